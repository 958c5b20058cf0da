"""MLflow side of the serving benchmark; runs in MLflow's venv (benchmarks/.venvs/mlflow).

    python mlflow_serving.py log DIR            # fit, log_model; prints the run id and model URI
    python mlflow_serving.py floor DIR URI N    # in-process pyfunc predict of one row, N calls

The store is ``sqlite:///DIR/mlflow.db`` with artifacts under ``DIR/artifacts``. The model
is PEERS.md's serving model: ``LogisticRegression(max_iter=5000)`` on ``load_breast_cancer``
(30 float columns), logged with ``mlflow.sklearn.log_model(model, name="model",
input_example=X.iloc[:5])``. Each subcommand prints one JSON object as its last stdout line.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path


def _store(directory: str) -> str:
    import mlflow

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    uri = f"sqlite:///{d / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name("serving") is None:
        mlflow.create_experiment("serving", artifact_location=(d / "artifacts").as_uri())
    mlflow.set_experiment("serving")
    return uri


def cmd_log(directory: str) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=5000).fit(X, y)
    store = _store(directory)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:5])
    print(
        json.dumps(
            {
                "run_id": run.info.run_id,
                "uri": f"runs:/{run.info.run_id}/model",
                "model_uri": info.model_uri,
                "tracking_uri": store,
            }
        )
    )


def cmd_floor(directory: str, uri: str, calls: str) -> None:
    import mlflow.pyfunc
    from sklearn.datasets import load_breast_cancer

    X, _ = load_breast_cancer(return_X_y=True, as_frame=True)
    _store(directory)
    model = mlflow.pyfunc.load_model(uri)
    row = X.iloc[:1]
    for _ in range(50):
        model.predict(row)
    times: list[float] = []
    deadline = time.perf_counter() + 10.0  # stop early on a slow machine (at least 100 calls)
    while len(times) < int(calls) and (len(times) < 100 or time.perf_counter() < deadline):
        t = time.perf_counter()
        model.predict(row)
        times.append(time.perf_counter() - t)
    times.sort()
    print(
        json.dumps(
            {
                "calls": len(times),
                "p50_us": statistics.median(times) * 1e6,
                "p99_us": times[int(0.99 * (len(times) - 1))] * 1e6,
            }
        )
    )


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {"log": cmd_log, "floor": cmd_floor}[command](*rest)
