"""Model package benchmarks, Keel against MLflow on the same machine in the same run.

    python benchmarks/bench_models.py [--repeats 3]

- ``log_model`` + ``register_model``: a fresh process fits PEERS.md's pipeline
  (StandardScaler + LogisticRegression on ``load_breast_cancer``), starts a run, and
  times the first ``log_model`` + ``register_model`` pair (cold: it pays the lazy imports
  of the serialiser) and a second one (warm), with ``input_example=X.iloc[:5]`` on both
  sides (``keel.log_model`` + ``keel.register_model``; ``mlflow.sklearn.log_model`` +
  ``mlflow.register_model``).
- fresh-process load: wall time of a new interpreter that imports the library, loads
  ``models:/bench-models/1`` and predicts one row (``keel.load_model`` /
  ``mlflow.pyfunc.load_model`` + ``predict``).

Runs alternate Keel and MLflow (K M K M ...); the table quotes medians. Run with
``child`` as the first argument to act as the Keel side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _harness import (  # noqa: E402
    alternate,
    append_results,
    compile_keel_bytecode,
    markdown_table,
    median,
)
from _peer_env import child_env, ensure_mlflow, package_version, run_in  # noqa: E402

MLFLOW_SCRIPT = HERE / "peers" / "mlflow_models.py"
THIS = Path(__file__).resolve()
MODEL_NAME = "bench-models"

KEEL_LOAD = """
import json, sys
import pandas as pd
import keel
model = keel.load_model(sys.argv[1])
print(json.dumps({"prediction": int(model.predict(pd.DataFrame([json.loads(sys.argv[2])]))[0])}))
"""

FLOOR = (
    "import pandas; from sklearn.pipeline import Pipeline; "
    "from sklearn.linear_model import LogisticRegression; "
    "from sklearn.preprocessing import StandardScaler"
)

MLFLOW_LOAD = """
import json, sys
import mlflow.pyfunc, pandas as pd
mlflow.set_tracking_uri(sys.argv[3])
model = mlflow.pyfunc.load_model(sys.argv[1])
print(json.dumps({"prediction": int(model.predict(pd.DataFrame([json.loads(sys.argv[2])]))[0])}))
"""


def child_log(directory: str) -> None:
    """The Keel side of the log measurement (runs in a fresh process)."""
    os.environ["KEEL_HOME"] = directory
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    import keel

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=5000))]).fit(X, y)
    times = []
    with keel.start_run(experiment="models"):
        for name in ("model", "model2"):
            t = time.perf_counter()
            info = keel.log_model(model, name=name, input_example=X.iloc[:5])
            version = keel.register_model(info.uri, MODEL_NAME)
            times.append(time.perf_counter() - t)
    assert version.version == 2, version
    uri = f"models:/{MODEL_NAME}/1"
    row = X.iloc[:1].to_dict("records")[0]
    print(json.dumps({"first_s": times[0], "second_s": times[1], "uri": uri, "row": row}))


def _wall(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{out.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mlflow_py = ensure_mlflow()
    mlflow_version = package_version(mlflow_py, "mlflow")
    keel_py = sys.executable
    compile_keel_bytecode(keel_py)
    keel_dirs: list[str] = []
    mlflow_dirs: list[str] = []

    def keel_log() -> dict[str, Any]:
        d = tempfile.mkdtemp(prefix="bench-models-keel-")
        keel_dirs.append(d)
        return run_in(keel_py, THIS, "child", d, env={"KEEL_HOME": d})

    def mlflow_log() -> dict[str, Any]:
        d = tempfile.mkdtemp(prefix="bench-models-mlflow-")
        mlflow_dirs.append(d)
        return run_in(mlflow_py, MLFLOW_SCRIPT, "log", d)

    ks, ms = alternate(keel_log, mlflow_log, args.repeats)
    k_first, m_first = median([r["first_s"] for r in ks]), median([r["first_s"] for r in ms])
    k_second, m_second = median([r["second_s"] for r in ks]), median([r["second_s"] for r in ms])

    k_env = child_env(None, {"KEEL_HOME": keel_dirs[0]})
    m_env = child_env(Path(mlflow_py))
    k_cmd = [keel_py, "-c", KEEL_LOAD, ks[0]["uri"], json.dumps(ks[0]["row"])]
    store = f"sqlite:///{Path(mlflow_dirs[0]) / 'mlflow.db'}"
    m_cmd = [str(mlflow_py), "-c", MLFLOW_LOAD, ms[0]["uri"], json.dumps(ms[0]["row"]), store]
    assert ks[0]["uri"] == ms[0]["uri"] == f"models:/{MODEL_NAME}/1", (ks[0], ms[0])
    _wall(k_cmd, k_env), _wall(m_cmd, m_env)  # warm the page cache once, untimed
    kl: list[float] = []
    ml: list[float] = []
    fl: list[float] = []
    for _ in range(args.repeats):  # K M F K M F ...: the floor shares each round's machine
        kl.append(_wall(k_cmd, k_env))
        ml.append(_wall(m_cmd, m_env))
        fl.append(_wall([keel_py, "-c", FLOOR], k_env))
    k_load, m_load, floor = median(kl), median(ml), median(fl)
    print("per round (Keel, MLflow, floor):", list(zip(kl, ml, fl, strict=True)), flush=True)

    rows = [
        [
            "log_model + register_model, first call in a process (cold)",
            f"{k_first:.3f} s",
            f"{m_first:.3f} s",
            f"{m_first / k_first:.1f}x",
            ">= 20x",
        ],
        [
            "log_model + register_model, second call (warm)",
            f"{k_second:.3f} s",
            f"{m_second:.3f} s",
            f"{m_second / k_second:.1f}x",
            "",
        ],
        [
            "fresh process: import + load_model(models:/...) + first predict",
            f"{k_load:.3f} s",
            f"{m_load:.3f} s",
            f"{m_load / k_load:.1f}x",
            ">= 4x",
        ],
        [
            "floor: a process that only imports pandas and the pipeline's classes",
            f"{floor:.3f} s",
            "",
            f"{m_load / floor:.1f}x",
            "the most any loader could reach",
        ],
    ]
    for row in rows:
        print(" | ".join(row))
    notes = (
        "Medians of alternating runs (K M K M ...; the load rows K M F K M F ..., the floor "
        "in the same rounds). log_model + register_model is timed "
        "inside a process that already fitted the model (scikit-learn imported) and started "
        "a run; the cold call includes importing the serialiser (skops for Keel; MLflow's "
        "own lazy imports and its pip-requirement inference). The load row is the wall time "
        "of a new interpreter, start to exit, loading the registered version 1 by its "
        "models:/ URI on both sides, each with its package's bytecode compiled, as a pip "
        "install leaves it (Keel's is compiled before timing). The floor row is a process "
        "that imports only what any loader of this pipeline needs (pandas for the input, "
        "the pipeline's scikit-learn classes); MLflow's time over it bounds any loader's ratio."
        "\n\nLoad rounds, wall seconds (Keel / MLflow / floor): "
        + "; ".join(f"{k:.2f} / {m:.2f} / {f:.2f}" for k, m, f in zip(kl, ml, fl, strict=True))
        + "."
    )
    append_results(
        "Models",
        markdown_table(["measurement", "Keel", "MLflow", "speed-up", "target"], rows),
        "python benchmarks/bench_models.py --repeats " + str(args.repeats),
        peer_version=f"MLflow {mlflow_version}",
        notes=notes,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["child"]:
        child_log(sys.argv[2])
    else:
        main()
