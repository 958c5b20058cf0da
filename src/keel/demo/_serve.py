"""Demo step 5: serve the champion, send it a burst of traffic, show what the server saw.

The server is the same app ``keel serve`` runs, on a real uvicorn server on 127.0.0.1
(an ephemeral port), for the duration of the step. The burst mixes concurrent single
rows, batches and a few malformed requests (refused with 4xx before the model runs),
then sends labels for part of the traffic to ``/feedback``.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from keel.context import get_context
from keel.core._deployments import DeploymentPolicy
from keel.errors import AlreadyExists

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

__all__ = ["serve_and_burst"]

DEPLOYMENT = "credit"


@contextmanager
def _running(app: Any) -> Iterator[str]:
    import httpx
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="keel-demo-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    if not server.started:
        raise RuntimeError("the demo server did not start; see the log above")
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        while httpx.get(f"{url}/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield url
    finally:
        server.should_exit = True
        thread.join(30)


def _deployment(model: str) -> None:
    service = get_context().deployments
    policy = DeploymentPolicy.single(f"models:/{model}@champion")
    try:
        service.create(DEPLOYMENT, policy, description="keel demo", actor="keel-demo")
    except AlreadyExists:
        if service.get(DEPLOYMENT).policy != policy:
            service.update(DEPLOYMENT, policy, actor="keel-demo", reason="keel demo")


def serve_and_burst(
    model: str,
    traffic: pd.DataFrame,
    target: str,
    console: Console,
    requests: int = 600,
    drifted: pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Serve ``model@champion`` as deployment ``credit``; send ``requests`` requests."""
    import httpx
    import orjson

    from keel.serving import ModelLoader, ServeOptions, serving_app

    context = get_context()
    _deployment(model)
    loader = ModelLoader(context.registry, context.models, max_rows=10_000)
    app = serving_app(
        DEPLOYMENT,
        loader,
        deployments=context.deployments,
        options=ServeOptions(),
        log_dir=context.settings.prediction_log_dir,
    )
    features = traffic.drop(columns=[target])
    labels = traffic[target].tolist()
    columns = list(features.columns)
    rows = orjson.loads(features.to_json(orient="values"))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent: list[tuple[str, int]] = []
    lock = threading.Lock()

    with _running(app) as url, httpx.Client(base_url=url, timeout=30) as client:

        def one(i: int) -> None:
            start = i % len(rows)
            size = 50 if i % 25 == 0 else 1
            body: Any = {"columns": columns, "data": rows[start : start + size]}
            if i % 100 == 7:  # a client bug: a number sent as text
                body = {"columns": columns, "data": [[str(v) for v in rows[start]]]}
            began = time.perf_counter()
            answer = client.post("/predict", json=body)
            elapsed = time.perf_counter() - began
            with lock:
                latencies.append(elapsed)
                statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
                if answer.status_code == 200:
                    sent.append((answer.json()["request_id"], start))

        began = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, range(requests)))
        seconds = time.perf_counter() - began
        feedback = [
            {"request_id": rid, "row": 0, "label": labels[start]} for rid, start in sent[::2]
        ]
        client.post("/feedback", json=feedback)
        labelled_drifted = 0
        if drifted is not None:  # 6. then production traffic drifts
            from keel.demo._monitor import send_drifted

            def post(path: str, body: Any) -> Any:
                answer = client.post(path, json=body)
                answer.raise_for_status()
                return answer.json()

            labelled_drifted = send_drifted(post, drifted, target)
            console.print(
                f"traffic: {len(drifted):,} drifted applications sent (a recession: lower "
                f"incomes, more debt); labels for {labelled_drifted:,} of them"
            )
        metrics = client.get("/metrics").text
        version = client.get("/metadata").json()["variants"][0]["model"]["version"]
    summary = {
        "deployment": DEPLOYMENT,
        "model_version": version,
        "requests": requests,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "requests_per_second": requests / seconds,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": sorted(latencies)[int(0.99 * (len(latencies) - 1))] * 1000,
        "labels_sent": len(feedback),
        "drifted_rows": 0 if drifted is None else len(drifted),
        "predict_calls": _metric(metrics, "keel_batch_requests_count"),
        "prediction_log": str(context.settings.prediction_log_dir / DEPLOYMENT),
    }
    console.print(
        f"serving: deployment {DEPLOYMENT} ({model} v{version}) answered {requests} requests "
        f"in {seconds:.1f}s ({summary['requests_per_second']:.0f} req/s, "
        f"p50 {summary['p50_ms']:.1f} ms, p99 {summary['p99_ms']:.1f} ms); statuses "
        + ", ".join(f"{k}: {v}" for k, v in summary["statuses"].items())
        + f"; {summary['predict_calls']:.0f} predict calls (micro-batching); "
        f"{len(feedback)} labels sent to /feedback"
    )
    console.print(f"prediction log: {summary['prediction_log']}")
    console.print(f"serve it:       keel serve --deployment {DEPLOYMENT}")
    return summary


def _metric(text: str, prefix: str) -> float:
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0
