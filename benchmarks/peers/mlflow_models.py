"""MLflow side of the model benchmarks; runs in MLflow's venv (benchmarks/.venvs/mlflow).

    python mlflow_models.py log DIR        # fit, time log_model + register_model (2 calls)
    python mlflow_models.py load URI ROW DIR  # fresh process: import + load_model + predict

The store is ``sqlite:///DIR/mlflow.db`` with artifacts under ``DIR/artifacts``. The
model is PEERS.md's: StandardScaler + LogisticRegression on ``load_breast_cancer``, logged
with ``mlflow.sklearn.log_model(model, name="model", input_example=X.iloc[:5])`` and
registered with ``mlflow.register_model(info.model_uri, "bench-models")``.
Each subcommand prints one JSON object as its last stdout line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

T0 = time.perf_counter()


def _store(directory: str) -> None:
    import mlflow

    d = Path(directory)
    mlflow.set_tracking_uri(f"sqlite:///{d / 'mlflow.db'}")
    if mlflow.get_experiment_by_name("models") is None:
        mlflow.create_experiment("models", artifact_location=(d / "artifacts").as_uri())
    mlflow.set_experiment("models")


def cmd_log(directory: str) -> None:
    import mlflow
    import mlflow.sklearn
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=5000))]).fit(X, y)
    _store(directory)
    times = []
    with mlflow.start_run() as run:
        for name in ("model", "model2"):
            t = time.perf_counter()
            info = mlflow.sklearn.log_model(model, name=name, input_example=X.iloc[:5])
            version = mlflow.register_model(info.model_uri, "bench-models")
            times.append(time.perf_counter() - t)
    assert int(version.version) == 2, version
    uri = "models:/bench-models/1"
    row = X.iloc[:1].to_dict("records")[0]
    print(
        json.dumps(
            {
                "first_s": times[0],
                "second_s": times[1],
                "uri": uri,
                "run": run.info.run_id,
                "row": row,
            }
        )
    )


def cmd_load(uri: str, row_json: str, directory: str) -> None:
    import mlflow.pyfunc
    import pandas as pd

    _store(directory)
    model = mlflow.pyfunc.load_model(uri)
    out = model.predict(pd.DataFrame([json.loads(row_json)]))
    print(json.dumps({"in_process_s": time.perf_counter() - T0, "prediction": int(out[0])}))


if __name__ == "__main__":
    command, *rest = sys.argv[1:]
    {"log": cmd_log, "load": cmd_load}[command](*rest)
