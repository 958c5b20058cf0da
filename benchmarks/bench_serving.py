"""Model serving benchmark, ``keel serve`` against ``mlflow models serve`` on the same machine.

    python benchmarks/bench_serving.py [--duration 10] [--rounds 3] [--load60 60]
                                       [--soak SECONDS] [--soak-only] [--no-results] [--keep]
    python benchmarks/bench_serving.py --render-only    # rewrite the section from saved results

Both servers serve PEERS.md's model, ``LogisticRegression(max_iter=5000)`` fitted on
scikit-learn's ``load_breast_cancer(as_frame=True)`` (30 float columns; lbfgs is
deterministic, so both sides fit the same coefficients, and the check before the runs
compares their predictions on a 1,000-row body):

- Keel, in a fresh ``KEEL_HOME``: ``keel.log_model(m, name="model", input_example=X.iloc[:5])``,
  registered as ``bc`` with the alias ``champion``, served by this venv's
  ``keel serve models:/bc@champion`` (one worker, default options: the prediction log is on).
- MLflow (its own venv, :func:`_peer_env.ensure_mlflow`): ``mlflow.sklearn.log_model`` into
  ``sqlite:///<dir>/mlflow.db``, served by ``mlflow models serve -m runs:/<id>/model
  --env-manager local`` (one uvicorn worker).

Both run with ``OPENBLAS_NUM_THREADS=1``. Load comes from ``wrk -t1 -cC -dDs --latency`` over
loopback with a Lua script that POSTs pre-read body files in turn (16 single-row bodies, 4
bodies of 1,000 rows resampled from the data with replacement, seeded):

- (a) single row, concurrency 1; (b) single row, concurrency 32; (c) 1,000 rows, concurrency 1.
  ``POST /invocations`` with ``{"dataframe_split": {"columns": [...], "data": [[...]]}}`` on both
  servers; Keel's native ``POST /predict`` with ``{"columns": [...], "data": [[...]]}`` is an
  extra line, and so is a second Keel server with micro-batching off (``--max-batch-rows 1
  --max-wait-ms 0``: one request per predict call), to show what batching changes.
  ``--rounds`` alternating rounds (Keel, MLflow, Keel, MLflow, ...) of ``--duration``
  seconds each, after an untimed warm-up; the table quotes medians.
- a zero-error check: one ``--load60`` second run at c=32 against Keel (0 skips it);
- each server's memory after the runs: RSS summed over its process tree (psutil if
  importable, else /proc), PSS alongside;
- floors: in-process ``predict`` of one row (Keel's loaded model, MLflow's pyfunc, the bare
  scikit-learn estimator), measured before the servers start;
- with every run, the CPU used meanwhile by other processes (all but the server under test
  and wrk, from /proc), so that figures from a shared machine can be judged;
- ``--soak SECONDS`` (default off): single-row c=32 load against Keel for that long, RSS
  sampled every 10 s, growth from the sample at one minute to the last one, and errors.
  ``--soak-only`` runs just the soak (no MLflow) and merges it into the section.

Working files live under ``benchmarks/.data/serving`` (gitignored): the stores are wiped at
the start of every run and removed at the end unless ``--keep``; the server logs, bodies and
the last results (``suite.json``, ``soak.json``, from which the RESULTS.md section is
rendered) stay. Servers are stopped in ``finally`` (their process group, by id).
Run with ``child`` as the first argument to act as the Keel side of the setup or the floor.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import append_results, markdown_table, median  # noqa: E402
from _peer_env import DATA_DIR, child_env, ensure_mlflow, package_version, run_in  # noqa: E402

THIS = Path(__file__).resolve()
ROOT = HERE.parent
MLFLOW_SCRIPT = HERE / "peers" / "mlflow_serving.py"
WORK = DATA_DIR / "serving"
KEEL_HOME = WORK / "keel-home"
MLFLOW_DIR = WORK / "mlflow"
BODIES = WORK / "bodies"
LOGS = WORK / "logs"
LUA = WORK / "post.lua"
SUITE_JSON = WORK / "suite.json"
SOAK_JSON = WORK / "soak.json"

SEED = 20261123
SINGLE_BODIES = 16
BATCH_BODIES = 4
BATCH_ROWS = 1000
FLOOR_CALLS = 3000
FLOOR_BUDGET_S = 10.0  # per floor: stop early on a slow machine (at least 100 calls)
SOAK_SAMPLE_S = 10.0
MIB = 1024 * 1024

# (key, label, body kind, connections)
SCENARIOS: tuple[tuple[str, str, str, int], ...] = (
    ("a", "single row, c=1", "single", 1),
    ("b", "single row, c=32", "single", 32),
    ("c", "1,000 rows, c=1", "batch", 1),
)

LUA_SCRIPT = r"""-- POST the body files named after `--` in turn (requests formatted up front).
local reqs = {}
local i = 0

function init(args)
  for _, path in ipairs(args) do
    local f = assert(io.open(path, "rb"))
    local body = f:read("*a")
    f:close()
    reqs[#reqs + 1] = wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
  end
  assert(#reqs > 0, "no body files given after --")
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "bytes": %d, "p50_us": %.1f, ' ..
    '"p90_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, summary.bytes, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read,
    e.write, e.status, e.timeout))
end
"""


# --------------------------------------------------------------------------- Keel side (child)


def child_setup() -> None:
    """Fit, log, register ``bc`` and set ``champion`` in ``$KEEL_HOME`` (a fresh process)."""
    import sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    with keel.start_run() as run:
        info = keel.log_model(model, name="model", input_example=X.iloc[:5])
    version = keel.register_model(info.uri, "bc")
    keel.set_alias(
        "bc", "champion", version.version, override=True, actor="bench", reason="benchmark"
    )
    print(
        json.dumps(
            {
                "run_id": run.id,
                "uri": info.uri,
                "version": version.version,
                "keel": keel.__version__,
                "sklearn": sklearn.__version__,
            }
        )
    )


def child_floor(calls: int) -> None:
    """Median in-process ``predict`` of one row: Keel's loaded model and the bare estimator."""
    from sklearn.datasets import load_breast_cancer

    import keel

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    loaded = keel.load_model("models:/bc@champion")
    row = X.iloc[:1]
    out = {}
    for key, fn in (("keel", loaded.predict), ("sklearn", loaded.raw.predict)):
        for _ in range(50):
            fn(row)
        times: list[float] = []
        deadline = time.perf_counter() + FLOOR_BUDGET_S
        while len(times) < calls and (len(times) < 100 or time.perf_counter() < deadline):
            t = time.perf_counter()
            fn(row)
            times.append(time.perf_counter() - t)
        times.sort()
        out[key] = {
            "calls": len(times),
            "p50_us": statistics.median(times) * 1e6,
            "p99_us": times[int(0.99 * (len(times) - 1))] * 1e6,
        }
    print(json.dumps(out))


# --------------------------------------------------------------------------- bodies and wrk


def write_bodies() -> dict[str, list[Path]]:
    """Body files: single rows and 1,000-row resamples, MLflow split and Keel columns forms."""
    import numpy as np
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    columns = [str(c) for c in X.columns]
    values = X.to_numpy(dtype=float)
    rng = np.random.default_rng(SEED)
    shutil.rmtree(BODIES, ignore_errors=True)
    BODIES.mkdir(parents=True)
    files: dict[str, list[Path]] = {}

    def emit(kind: str, i: int, rows: Any) -> None:
        data = [[float(v) for v in r] for r in rows]
        inv = BODIES / f"{kind}-{i:02d}.invocations.json"
        inv.write_text(json.dumps({"dataframe_split": {"columns": columns, "data": data}}))
        pred = BODIES / f"{kind}-{i:02d}.predict.json"
        pred.write_text(json.dumps({"columns": columns, "data": data}))
        files.setdefault(f"{kind}/invocations", []).append(inv)
        files.setdefault(f"{kind}/predict", []).append(pred)

    for i, idx in enumerate(rng.choice(len(values), size=SINGLE_BODIES, replace=False)):
        emit("single", i, values[[idx]])
    for i in range(BATCH_BODIES):
        emit("batch", i, values[rng.integers(0, len(values), size=BATCH_ROWS)])
    LUA.write_text(LUA_SCRIPT)
    return files


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    rps: float
    rows_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    socket_errors: int
    other_cpu_cores: float = 0.0  # used by other processes during the run

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def run_wrk(
    url: str, bodies: Sequence[Path], connections: int, duration: float, rows: int
) -> WrkResult:
    """One wrk run (``-t1``, ``--latency``); figures from the Lua ``done`` hook."""
    secs = max(1, round(duration))
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{secs}s", "--latency", "--timeout", "10s"]
    cmd += ["-s", str(LUA), url, "--", *map(str, bodies)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=secs + 60)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(
            f"wrk failed ({proc.returncode}): {' '.join(cmd[:8])} {url}\n"
            f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        )
    d = json.loads(line[len("WRKJSON ") :])
    dur = d["duration_us"] / 1e6
    rps = d["requests"] / dur if dur > 0 else 0.0
    return WrkResult(
        requests=d["requests"],
        duration_s=dur,
        rps=rps,
        rows_per_s=rps * rows,
        p50_ms=d["p50_us"] / 1e3,
        p90_ms=d["p90_us"] / 1e3,
        p99_ms=d["p99_us"] / 1e3,
        max_ms=d["max_us"] / 1e3,
        non2xx=d["status"],
        socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
    )


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _status_kib(pid: int, path: str, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _tree_pids(pid: int) -> list[int]:
    children = _proc_children()
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo.extend(children.get(p, []))
    return pids


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its descendants."""
    ticks = 0
    for p in _tree_pids(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / _TICK


def machine_busy_s() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores, /proc/stat)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(
        int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / _TICK


class OtherLoad:
    """CPU cores used by processes other than the measured server and wrk, over a window."""

    def __init__(self, server_pid: int) -> None:
        self.pid = server_pid

    def __enter__(self) -> OtherLoad:
        self.t0 = time.perf_counter()
        self.busy0, self.srv0 = machine_busy_s(), tree_cpu_s(self.pid)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.kids0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self.t0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        kids = ru.ru_utime + ru.ru_stime - self.kids0
        ours = tree_cpu_s(self.pid) - self.srv0 + kids
        self.cores = max(0.0, (machine_busy_s() - self.busy0 - ours) / wall) if wall else 0.0


def tree_memory(pid: int) -> dict[str, float]:
    """RSS and PSS (MiB) summed over ``pid`` and its descendants, and the process count."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
            pids = [p.pid for p in procs]
            rss = sum(p.memory_info().rss for p in procs) / MIB
        except psutil.Error:
            return {"rss_mib": 0.0, "pss_mib": 0.0, "processes": 0}
    else:
        pids = _tree_pids(pid)
        rss = sum(_status_kib(p, "status", "VmRSS") for p in pids) / 1024
    pss = sum(_status_kib(p, "smaps_rollup", "Pss") for p in pids) / 1024
    return {"rss_mib": rss, "pss_mib": pss, "processes": len(pids)}


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return int(r.status)
    except urllib.error.HTTPError as e:
        return int(e.code)
    except OSError:
        return 0


def _post(url: str, body: bytes) -> tuple[int, Any]:
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return int(r.status), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return int(e.code), e.read().decode(errors="replace")[:500]


class Server:
    """A server process in its own session, stopped through its process group."""

    def __init__(
        self, name: str, cmd: list[str], env: dict[str, str], port: int, ready_path: str
    ) -> None:
        self.name, self.cmd, self.env, self.port = name, cmd, env, port
        self.base = f"http://127.0.0.1:{port}"
        self.ready_path = ready_path
        self.log_path = LOGS / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.cmd,
                env=self.env,
                cwd=WORK,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 180.0) -> float:
        assert self.proc is not None
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} server exited with {self.proc.returncode} before it was ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            if _get(self.base + self.ready_path) == 200:
                return time.perf_counter() - t0
            time.sleep(0.2)
        raise RuntimeError(
            f"{self.name} server not ready after {timeout:.0f} s:\n{self.log_tail()}"
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def memory(self) -> dict[str, float]:
        assert self.proc is not None
        return tree_memory(self.proc.pid)

    def stop(self) -> None:
        if self.proc is None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the child's pid
        for sig, wait in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 10.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)  # workers left behind by a parent that exited first
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)


def prepare_optimized_bytecode() -> None:
    """Compile ``-OO`` bytecode for this environment once, as a deployment image would
    (README, Serving): ``keel serve`` runs its server under ``-OO`` only when that
    bytecode exists or may be written, and PYTHONDONTWRITEBYTECODE forbids the latter.
    """
    from keel._server import optimized_bytecode_ready

    if optimized_bytecode_ready(can_write=False):
        return
    import sysconfig

    _say("compiling -OO bytecode for the serving environment (once)")
    purelib = sysconfig.get_paths()["purelib"]
    subprocess.run([sys.executable, "-OO", "-m", "compileall", "-q", "-j0", purelib], check=False)


UNBATCHED = ("--max-batch-rows", "1", "--max-wait-ms", "0")
"""``keel serve`` options that turn micro-batching off: one request per predict call."""


def keel_server(port: int, options: Sequence[str] = (), name: str = "keel") -> Server:
    prepare_optimized_bytecode()
    keel_bin = Path(sys.prefix) / "bin" / "keel"
    if not keel_bin.exists():
        keel_bin = ROOT / ".venv" / "bin" / "keel"
    cmd = [str(keel_bin), "serve", "models:/bc@champion", "--port", str(port)]
    cmd += ["--host", "127.0.0.1", *options]
    env = child_env(None, {"KEEL_HOME": str(KEEL_HOME)})
    return Server(name, cmd, env, port, "/ready")


def mlflow_server(python: Path, run_uri: str, port: int) -> Server:
    mlflow_bin = Path(python).parent / "mlflow"
    cmd = [str(mlflow_bin), "models", "serve", "-m", run_uri, "--env-manager", "local"]
    cmd += ["-p", str(port), "-h", "127.0.0.1"]
    tracking = f"sqlite:///{MLFLOW_DIR / 'mlflow.db'}"
    env = child_env(Path(python), {"MLFLOW_TRACKING_URI": tracking})
    return Server("mlflow", cmd, env, port, "/ping")


def check_servers(
    targets: Sequence[tuple[str, str, list[Path], int]],
) -> dict[str, list[Any]]:
    """POST one body of each kind; every answer must be 200 with one prediction per row."""
    answers: dict[str, list[Any]] = {}
    for label, url, bodies, rows in targets:
        status, out = _post(url, bodies[0].read_bytes())
        if status != 200 or not isinstance(out, dict) or len(out.get("predictions", [])) != rows:
            raise RuntimeError(f"{label}: POST {url} answered {status}: {str(out)[:500]}")
        answers[label] = out["predictions"]
    return answers


# --------------------------------------------------------------------------- the suite


def _git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


def _wrk_version() -> str:
    out = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    first = (out.stdout or out.stderr).splitlines()[:1]
    return first[0].split(" Copyright")[0].strip() if first else "wrk"


def setup_keel() -> dict[str, Any]:
    shutil.rmtree(KEEL_HOME, ignore_errors=True)
    KEEL_HOME.mkdir(parents=True)
    return run_in(sys.executable, THIS, "child", "setup", env={"KEEL_HOME": str(KEEL_HOME)})


def setup_mlflow(python: Path) -> dict[str, Any]:
    shutil.rmtree(MLFLOW_DIR, ignore_errors=True)
    MLFLOW_DIR.mkdir(parents=True)
    return run_in(python, MLFLOW_SCRIPT, "log", str(MLFLOW_DIR), timeout=600)


def _say(msg: str) -> None:
    print(f"[serving {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _fmt(r: WrkResult, rows: int) -> str:
    rate = f"{r.rows_per_s:,.0f} rows/s" if rows > 1 else f"{r.rps:,.0f} req/s"
    return (
        f"{rate}, p50 {r.p50_ms:.3f} ms, p99 {r.p99_ms:.3f} ms, "
        f"{r.requests} requests, non-2xx {r.non2xx}, socket errors {r.socket_errors}, "
        f"other processes {r.other_cpu_cores:.2f} cores"
    )


def run_suite(args: argparse.Namespace, files: dict[str, list[Path]]) -> dict[str, Any]:
    mlflow_py = ensure_mlflow()
    versions = {"mlflow": package_version(mlflow_py, "mlflow")}
    versions["mlflow_sklearn"] = package_version(mlflow_py, "scikit-learn")
    _say("logging the model on the MLflow side")
    m_setup = setup_mlflow(mlflow_py)

    _say("in-process floors")
    k_floor = run_in(
        sys.executable, THIS, "child", "floor", str(FLOOR_CALLS), env={"KEEL_HOME": str(KEEL_HOME)}
    )
    m_floor = run_in(
        mlflow_py,
        MLFLOW_SCRIPT,
        "floor",
        str(MLFLOW_DIR),
        m_setup["uri"],
        str(FLOOR_CALLS),
        env={"MLFLOW_TRACKING_URI": m_setup["tracking_uri"]},
    )

    keel = keel_server(free_port())
    mlflow = mlflow_server(mlflow_py, m_setup["uri"], free_port())
    unbatched = keel_server(free_port(), UNBATCHED, name="keel-unbatched")
    servers = [keel, mlflow, unbatched]
    rounds: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for s in servers:
            s.start()
        startup = {s.name: s.wait_ready() for s in servers}
        _say("servers ready: " + ", ".join(f"{n} {s:.1f} s" for n, s in startup.items()))

        # (label, url, bodies per kind) for every measured side
        sides: dict[str, tuple[str, str]] = {
            "keel": (keel.base + "/invocations", "invocations"),
            "mlflow": (mlflow.base + "/invocations", "invocations"),
            "keel_predict": (keel.base + "/predict", "predict"),
            "keel_unbatched": (unbatched.base + "/invocations", "invocations"),
        }
        server_of = {
            "keel": keel,
            "mlflow": mlflow,
            "keel_predict": keel,
            "keel_unbatched": unbatched,
        }
        checks = []
        for side, (url, form) in sides.items():
            checks.append((f"{side}/single", url, files[f"single/{form}"], 1))
            checks.append((f"{side}/batch", url, files[f"batch/{form}"], BATCH_ROWS))
        answers = check_servers(checks)
        agree = [int(v) for v in answers["keel/batch"]] == [int(v) for v in answers["mlflow/batch"]]
        if not agree:
            _say("WARNING: Keel's and MLflow's predictions differ on the 1,000-row body")

        def measure(side: str, kind: str, conns: int, secs: float) -> WrkResult:
            url, form = sides[side]
            rows = BATCH_ROWS if kind == "batch" else 1
            server = server_of[side]
            assert server.proc is not None
            with OtherLoad(server.proc.pid) as other:
                res = run_wrk(url, files[f"{kind}/{form}"], conns, secs, rows)
            return replace(res, other_cpu_cores=other.cores)

        warm = min(3.0, args.duration)
        _say(f"warm-up ({warm:.0f} s per server and scenario, untimed)")
        for _, _, kind, conns in SCENARIOS:
            for side in sides:
                measure(side, kind, conns, warm)

        for r in range(args.rounds):
            for key, label, kind, conns in SCENARIOS:
                for side in sides:
                    res = measure(side, kind, conns, args.duration)
                    rows = BATCH_ROWS if kind == "batch" else 1
                    _say(f"round {r + 1} ({key}) {label} {side}: {_fmt(res, rows)}")
                    rounds.setdefault(key, {}).setdefault(side, []).append(asdict(res))

        load60 = None
        if args.load60 > 0:
            _say(f"{args.load60:.0f} s at c=32 against Keel")
            res = measure("keel", "single", 32, args.load60)
            _say(f"load60: {_fmt(res, 1)}")
            load60 = asdict(res)

        memory = {s.name: s.memory() for s in servers}
        alive = {s.name: s.alive() for s in servers}
        ready_after = {s.name: _get(s.base + s.ready_path) for s in servers}
        _say(f"memory after the runs: {memory}")
    finally:
        for s in servers:
            s.stop()

    keel_errors = _server_errors(keel.log_path)
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(args),
        "duration_s": args.duration,
        "rounds_n": args.rounds,
        "versions": versions,
        "mlflow_setup": m_setup,
        "floors": {"keel": k_floor["keel"], "sklearn": k_floor["sklearn"], "mlflow": m_floor},
        "startup_s": startup,
        "predictions_agree": agree,
        "rounds": rounds,
        "load60": load60,
        "memory": memory,
        "alive_after": alive,
        "ready_after": ready_after,
        "keel_log_errors": keel_errors,
    }


def run_soak(args: argparse.Namespace, files: dict[str, list[Path]]) -> dict[str, Any]:
    keel = keel_server(free_port())
    samples: list[tuple[float, float]] = []
    try:
        keel.start()
        keel.wait_ready()
        url = keel.base + "/invocations"
        body = files["single/invocations"]
        check_servers([("keel/single", url, body, 1)])
        run_wrk(url, body, 32, min(5.0, args.soak), 1)  # warm-up, untimed
        secs = max(1, round(args.soak))
        cmd = ["wrk", "-t1", "-c32", f"-d{secs}s", "--latency", "--timeout", "10s"]
        cmd += ["-s", str(LUA), url, "--", *map(str, body)]
        _say(f"soak: {secs} s at c=32 against Keel, RSS every {SOAK_SAMPLE_S:.0f} s")
        t0 = time.perf_counter()
        assert keel.proc is not None
        with (
            OtherLoad(keel.proc.pid) as other,
            subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as w,
        ):
            samples.append((0.0, keel.memory()["rss_mib"]))
            next_t = SOAK_SAMPLE_S
            while w.poll() is None:
                time.sleep(0.2)
                now = time.perf_counter() - t0
                if now >= next_t and keel.alive():
                    samples.append((now, keel.memory()["rss_mib"]))
                    next_t += SOAK_SAMPLE_S
            out, err = w.communicate()
        samples.append((time.perf_counter() - t0, keel.memory()["rss_mib"]))
        line = next((ln for ln in out.splitlines() if ln.startswith("WRKJSON ")), None)
        if line is None:
            raise RuntimeError(f"soak wrk failed:\n{out[-2000:]}\n{err[-2000:]}")
        d = json.loads(line[len("WRKJSON ") :])
        alive, ready = keel.alive(), _get(keel.base + "/ready")
        memory_end = keel.memory()
    finally:
        keel.stop()
    at_minute = next((rss for t, rss in samples if t >= 60.0), samples[0][1])
    end = samples[-1][1]
    dur = d["duration_us"] / 1e6
    result = {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": _command(args),
        "seconds": secs,
        "requests": d["requests"],
        "rps": d["requests"] / dur if dur else 0.0,
        "p50_ms": d["p50_us"] / 1e3,
        "p99_ms": d["p99_us"] / 1e3,
        "non2xx": d["status"],
        "socket_errors": d["connect"] + d["read"] + d["write"] + d["timeout"],
        "other_cpu_cores": other.cores,
        "rss_first_minute_mib": at_minute,
        "rss_end_mib": end,
        "rss_max_mib": max(rss for _, rss in samples),
        "growth_pct": (end - at_minute) / at_minute * 100 if at_minute else float("nan"),
        "samples": samples,
        "memory_end": memory_end,
        "alive_after": alive,
        "ready_after": ready,
        "keel_log_errors": _server_errors(keel.log_path),
        "git": _git_state(),
    }
    _say(
        f"soak: {result['requests']} requests, {result['non2xx']} non-2xx, "
        f"{result['socket_errors']} socket errors; RSS {at_minute:.1f} MiB at 1 min -> "
        f"{end:.1f} MiB at the end ({result['growth_pct']:+.2f}%)"
    )
    return result


def _server_errors(log: Path) -> list[str]:
    """Lines of a server log that look like errors (tracebacks, ERROR level)."""
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return []
    hits = [ln for ln in lines if "Traceback" in ln or "ERROR" in ln or "Error:" in ln]
    return hits[:20]


def _command(args: argparse.Namespace) -> str:
    return " ".join(["python benchmarks/bench_serving.py", *sys.argv[1:]]).strip()


# --------------------------------------------------------------------------- report


def _med(rounds: dict[str, Any], key: str, side: str, field: str) -> float:
    return median([r[field] for r in rounds[key][side]])


def _verdict(ok: bool | None) -> str:
    return "" if ok is None else ("pass" if ok else "FAIL")


def render(suite: dict[str, Any] | None, soak: dict[str, Any] | None) -> tuple[str, str, str]:
    """(table, notes, peer version) of the Serving section from the saved results."""
    rows: list[list[Any]] = []
    notes: list[str] = []

    def add(what: str, k: str, m: str, ratio: str, target: str, ok: bool | None) -> None:
        rows.append([what, k, m, ratio, target, _verdict(ok)])

    peer = ""
    if suite is not None:
        rd = suite["rounds"]
        peer = f"MLflow {suite['versions']['mlflow']} (`mlflow models serve`, uvicorn, 1 worker)"

        def ms(v: float) -> str:
            return f"{v:.3f} ms"

        def x(v: float) -> str:
            return f"{v:.1f}x" if v >= 10 else f"{v:.2f}x"

        for key, label, kind, _ in SCENARIOS:
            k_rps, m_rps = _med(rd, key, "keel", "rps"), _med(rd, key, "mlflow", "rps")
            if kind == "batch":
                k_rows, m_rows = k_rps * BATCH_ROWS, m_rps * BATCH_ROWS
                add(
                    f"({key}) {label}: rows/s",
                    f"{k_rows:,.0f}",
                    f"{m_rows:,.0f}",
                    x(k_rows / m_rows),
                    ">= 5x MLflow",
                    k_rows / m_rows >= 5,
                )
            else:
                tgt = ">= 10x MLflow" if key == "b" else ""
                add(
                    f"({key}) {label}: requests/s",
                    f"{k_rps:,.0f}",
                    f"{m_rps:,.0f}",
                    x(k_rps / m_rps),
                    tgt,
                    k_rps / m_rps >= 10 if key == "b" else None,
                )
            for field, name in (("p50_ms", "p50"), ("p99_ms", "p99")):
                kv, mv = _med(rd, key, "keel", field), _med(rd, key, "mlflow", field)
                tgt, ok = "", None
                if key == "a" and field == "p50_ms":
                    tgt, ok = "<= 1 ms", kv <= 1.0
                if key == "b" and field == "p99_ms":
                    tgt, ok = "lower than MLflow", kv < mv
                add(f"({key}) {label}: {name} latency", ms(kv), ms(mv), x(mv / kv), tgt, ok)
        for key, label, kind, _ in SCENARIOS:
            m_rps = _med(rd, key, "mlflow", "rps")
            k_rps = _med(rd, key, "keel_predict", "rps")
            p50, p99 = (
                _med(rd, key, "keel_predict", "p50_ms"),
                _med(rd, key, "keel_predict", "p99_ms"),
            )
            rate = f"{k_rps * BATCH_ROWS:,.0f} rows/s" if kind == "batch" else f"{k_rps:,.0f} req/s"
            add(
                f"Keel `/predict` ({key}) {label}",
                f"{rate}; p50 {p50:.3f} / p99 {p99:.3f} ms",
                "",
                x(k_rps / m_rps),
                "",
                None,
            )
        keel_sides = [s for s in ("keel", "keel_predict", "keel_unbatched") if s in rd["a"]]
        k_err = sum(
            r["non2xx"] + r["socket_errors"] for s in keel_sides for key in rd for r in rd[key][s]
        )
        m_err = sum(r["non2xx"] + r["socket_errors"] for key in rd for r in rd[key]["mlflow"])
        add("errors over all timed runs (non-2xx + socket)", str(k_err), str(m_err), "", "", None)
        if "keel_unbatched" in rd["a"]:
            _batching_rows(rd, add)
        mem = suite["memory"]
        kr, mr = mem["keel"]["rss_mib"], mem["mlflow"]["rss_mib"]
        add(
            "RSS after the runs, process tree (PSS)",
            f"{kr:.0f} MiB ({mem['keel']['pss_mib']:.0f}), {mem['keel']['processes']} proc",
            f"{mr:.0f} MiB ({mem['mlflow']['pss_mib']:.0f}), {mem['mlflow']['processes']} proc",
            x(mr / kr),
            "<= 250 MiB",
            kr <= 250,
        )
        fl = suite["floors"]
        add(
            "floor: in-process predict of one row, p50",
            f"{fl['keel']['p50_us']:.0f} µs",
            f"{fl['mlflow']['p50_us']:.0f} µs",
            x(fl["mlflow"]["p50_us"] / fl["keel"]["p50_us"]),
            "",
            None,
        )
        add(
            "floor: bare scikit-learn `predict` of one row, p50",
            f"{fl['sklearn']['p50_us']:.0f} µs",
            "",
            "",
            "",
            None,
        )
        if suite["load60"] is not None:
            l6 = suite["load60"]
            errs = l6["non2xx"] + l6["socket_errors"]
            add(
                f"{l6['duration_s']:.0f} s at c=32, single row (Keel)",
                f"{l6['requests']:,} requests, {errs} errors ({l6['rps']:,.0f} req/s)",
                "",
                "",
                "zero errors",
                errs == 0,
            )

        spreads = []
        for key, _label, kind, _ in SCENARIOS:
            f = "rows_per_s" if kind == "batch" else "rps"
            k = ", ".join(f"{r[f]:,.0f}" for r in rd[key]["keel"])
            m = ", ".join(f"{r[f]:,.0f}" for r in rd[key]["mlflow"])
            spreads.append(f"({key}) Keel {k} / MLflow {m}")
        v = suite["versions"]
        notes.append(
            f"Suite measured {suite['date']}. Medians of {suite['rounds_n']} alternating "
            "rounds (Keel, MLflow, Keel `/predict`, Keel without batching) of "
            f"{suite['duration_s']:g} s per scenario, after an untimed warm-up; `wrk -t1` over "
            "loopback with a Lua script that POSTs pre-read body files in turn (16 single-row "
            "bodies; 4 bodies of 1,000 rows resampled with replacement, seeded). Same model on "
            "both sides (`LogisticRegression(max_iter=5000)` on `load_breast_cancer`, lbfgs, "
            f"scikit-learn {v.get('keel_sklearn', '?')} / {v['mlflow_sklearn']}); predictions on "
            f"the 1,000-row body agree: {'yes' if suite['predictions_agree'] else 'NO'}. "
            "Both servers run with `OPENBLAS_NUM_THREADS=1`, one worker each, on the same 2 "
            "cores as wrk. Keel: `keel serve models:/bc@champion` with default options "
            "(micro-batching, the Parquet prediction log on). Ratios: Keel/MLflow for "
            "throughput, MLflow/Keel for latency and memory (higher is better for Keel). "
            "The `/predict` lines use Keel's native columns body; their ratio is to MLflow's "
            "`/invocations` figure. The micro-batching lines compare Keel with a second Keel "
            "server, measured in the same rounds, started with `--max-batch-rows 1 "
            "--max-wait-ms 0` (one request per predict call); both predict a request that is "
            "alone in the server on the event loop, so at c=1 they run the same code. "
            f"Keel {v.get('keel', '?')} at {v.get('git', '?')}; "
            f"{v.get('wrk', 'wrk')}. Server start to ready: Keel "
            f"{suite['startup_s']['keel']:.1f} s, MLflow {suite['startup_s']['mlflow']:.1f} s."
        )
        notes.append("Per-round throughput (req/s; rows/s for (c)): " + "; ".join(spreads) + ".")
        notes.append(
            "Floors: a fresh process per side, before the servers start, times `predict` on a "
            f"one-row DataFrame (median of up to {FLOOR_CALLS:,} calls, at most "
            f"{FLOOR_BUDGET_S:g} s): Keel's `keel.load_model('models:/bc@champion').predict` "
            "(signature check included), MLflow's `mlflow.pyfunc.load_model(...).predict`, and "
            "the estimator's own `predict`. RSS is read from the server's process tree after "
            "the last run (MLflow: the `mlflow` CLI and the uvicorn worker it starts)."
        )
        other = [r.get("other_cpu_cores", 0.0) for key in rd for s in rd[key].values() for r in s]
        notes.append(
            "CPU used by other processes on the machine during the timed runs (not the server "
            f"under test, not wrk): median {median(other):.2f} cores, max {max(other):.2f} "
            f"cores of {len(os.sched_getaffinity(0))}."
        )
        problems = []
        for name in suite["alive_after"]:
            if not suite["alive_after"][name] or suite["ready_after"][name] != 200:
                problems.append(f"{name} was not answering after the runs")
        if suite["keel_log_errors"]:
            problems.append(f"Keel's server log has {len(suite['keel_log_errors'])} error line(s)")
        healthy = "every server up and ready after the runs, no errors in Keel's log"
        notes.append("Server health: " + ("; ".join(problems) or healthy) + ".")

    if soak is not None:
        errs = soak["non2xx"] + soak["socket_errors"]
        secs = soak["seconds"]
        span = f"{secs / 60:g} min" if secs >= 60 else f"{secs} s"
        add(
            f"soak: {span} at c=32 (Keel), RSS growth from 1 min to the end",
            f"{soak['growth_pct']:+.2f}% ({soak['rss_first_minute_mib']:.0f} -> "
            f"{soak['rss_end_mib']:.0f} MiB), {soak['requests']:,} requests, {errs} errors",
            "",
            "",
            "< 5%, zero errors",
            soak["growth_pct"] < 5 and errs == 0,
        )
        notes.append(
            f"Soak measured {soak['date']} (`{soak['command']}`"
            + (f", Keel at {soak['git']}" if soak.get("git") else "")
            + "), on its own server: RSS (process "
            f"tree) sampled every {SOAK_SAMPLE_S:.0f} s, max {soak['rss_max_mib']:.0f} MiB; "
            f"{soak['rps']:,.0f} req/s, p50 {soak['p50_ms']:.3f} ms, p99 {soak['p99_ms']:.3f} ms; "
            f"other processes used {soak.get('other_cpu_cores', 0.0):.2f} cores on average."
        )
    elif suite is not None:
        notes.append("Soak: not run (`--soak 600` runs it; about 10 minutes).")
    headers = ["measurement", "Keel", "MLflow", "ratio", "target", "result"]
    return markdown_table(headers, rows), "\n\n".join(notes), peer


def _batching_rows(rd: dict[str, Any], add: Callable[..., None]) -> None:
    """Keel with micro-batching on (the default) against off, scenarios (a) and (b).

    The issue's rule: batching lowers latency and raises throughput under concurrency,
    and does not raise p50 at concurrency 1 (within a 10% band: at c=1 both servers run
    the same code, so any gap there is the machine's noise).
    """

    def on_off(key: str, field: str) -> tuple[float, float]:
        return _med(rd, key, "keel", field), _med(rd, key, "keel_unbatched", field)

    on, off = on_off("a", "p50_ms")
    add(
        "micro-batching on / off: (a) c=1 p50",
        f"{on:.3f} / {off:.3f} ms",
        "",
        f"{off / on:.2f}x",
        "not higher than off (10% band)",
        on <= off * 1.10,
    )
    on, off = on_off("b", "rps")
    add(
        "micro-batching on / off: (b) c=32 requests/s",
        f"{on:,.0f} / {off:,.0f}",
        "",
        f"{on / off:.2f}x",
        "higher than off",
        on > off,
    )
    for field, name in (("p50_ms", "p50"), ("p99_ms", "p99")):
        on, off = on_off("b", field)
        add(
            f"micro-batching on / off: (b) c=32 {name}",
            f"{on:.3f} / {off:.3f} ms",
            "",
            f"{off / on:.2f}x",
            "lower than off",
            on < off,
        )


def write_section(suite: dict[str, Any] | None, soak: dict[str, Any] | None) -> None:
    table, notes, peer = render(suite, soak)
    command = suite["command"] if suite is not None else (soak or {}).get("command", "")
    append_results("Serving", table, command, peer_version=peer or None, notes=notes)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--load60", type=float, default=60.0, help="zero-error run, s (0: skip)")
    parser.add_argument("--soak", type=float, default=0.0, help="soak seconds (0: off)")
    parser.add_argument("--soak-only", action="store_true", help="run the soak alone")
    parser.add_argument("--no-results", action="store_true", help="do not write RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the stores afterwards")
    parser.add_argument(
        "--render-only", action="store_true", help="rewrite the section from the saved results"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not on PATH (apt-get install wrk)")
    if args.soak_only and args.soak <= 0:
        sys.exit("--soak-only needs --soak SECONDS")
    if args.render_only:
        write_section(_load(SUITE_JSON), _load(SOAK_JSON))
        return
    WORK.mkdir(parents=True, exist_ok=True)
    suite = soak = None
    try:
        _say("logging and registering the model on the Keel side")
        k_setup = setup_keel()
        files = write_bodies()
        if not args.soak_only:
            suite = run_suite(args, files)
            suite["versions"].update(
                keel=k_setup["keel"],
                keel_sklearn=k_setup["sklearn"],
                git=_git_state(),
                wrk=_wrk_version(),
            )
            SUITE_JSON.write_text(json.dumps(suite, indent=1))
        if args.soak > 0:
            soak = run_soak(args, files)
            SOAK_JSON.write_text(json.dumps(soak, indent=1))
    finally:
        if not args.keep:
            shutil.rmtree(KEEL_HOME, ignore_errors=True)
            shutil.rmtree(MLFLOW_DIR, ignore_errors=True)
    # A separate soak run joins the last suite's figures and vice versa.
    suite = suite if suite is not None else _load(SUITE_JSON)
    soak = soak if soak is not None else _load(SOAK_JSON)
    table, notes, _ = render(suite, soak)
    print(table)
    print()
    print(notes)
    if not args.no_results:
        write_section(suite, soak)


def _dispatch_child(argv: Sequence[str]) -> None:
    handlers: dict[str, Callable[..., None]] = {
        "setup": child_setup,
        "floor": lambda calls: child_floor(int(calls)),
    }
    handlers[argv[0]](*argv[1:])


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        _dispatch_child(sys.argv[2:])
    else:
        main()
