"""``keel predict`` end to end: the installed CLI in a subprocess, KEEL_HOME in tmp_path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from keel.models import ModelService
from keel.registry import ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.tracking import TrackingService

KEEL = str(Path(sys.executable).with_name("keel"))
Keel = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, Any]:
    """A KEEL_HOME where models:/credit@champion is a LogisticRegression on 3 columns."""
    home = tmp_path_factory.mktemp("predict") / "home"
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    tracking = TrackingService(
        store, LocalArtifactStore(home / "artifacts"), capture_environment=False
    )
    registry = RegistryService(ModelRegistryStore(store.engine), tracking)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"income": rng.normal(50, 10, 500), "debt": rng.normal(10, 3, 500)}
    ).assign(years=rng.integers(0, 30, 500))
    model = LogisticRegression(max_iter=1000).fit(frame, frame["income"] > 5 * frame["debt"])
    run = tracking.create_run("predict-e2e")
    ModelService(tracking).log_model(run.id, model, input_example=frame.iloc[:5])
    tracking.end_run(run.id)
    registry.register_model(f"runs:/{run.id}/model", "credit")
    registry.set_alias("credit", "champion", 1, actor="ada", reason="e2e", override=True)
    tracking.close()
    store.close()
    return home, frame, model


@pytest.fixture
def work(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


@pytest.fixture
def keel(seeded: tuple[Path, pd.DataFrame, Any], work: Path, tmp_path: Path) -> Keel:
    home = tmp_path / "home"
    shutil.copytree(seeded[0], home)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false", COLUMNS="200", NO_COLOR="1")

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KEEL, "predict", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=work,
            timeout=180,
            check=False,
        )
        assert done.returncode == code, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done

    return run


def _error(done: subprocess.CompletedProcess[str]) -> str:
    return " ".join(done.stderr.split())


def test_scores_a_parquet_file(
    keel: Keel, seeded: tuple[Path, pd.DataFrame, Any], work: Path
) -> None:
    _, frame, model = seeded
    frame.assign(customer=[f"c{i}" for i in range(500)]).to_parquet(work / "in.parquet")
    done = keel("models:/credit@champion", "in.parquet", "-o", "out.parquet", "--json")
    summary = json.loads(done.stdout)
    assert summary["rows_read"] == summary["rows_scored"] == 500
    assert (summary["rows_rejected"], summary["version"]) == (0, 1)
    assert summary["unused_columns"] == ["customer"]
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    out = pq.read_table(work / "out.parquet").to_pandas()
    assert list(out.columns) == [
        "row", "income", "debt", "years", "customer", "prediction", "proba_False", "proba_True",
    ]  # fmt: skip
    assert out["row"].tolist() == list(range(500))
    assert (out["prediction"].to_numpy() == model.predict(frame)).all()
    np.testing.assert_allclose(out["proba_True"], model.predict_proba(frame)[:, 1])


def test_rejected_rows_exit_2_and_are_recorded(
    keel: Keel, seeded: tuple[Path, pd.DataFrame, Any], work: Path
) -> None:
    _, frame, _ = seeded
    lines = frame.iloc[:6].to_csv(index=False).splitlines()
    lines[2] = lines[2].replace(lines[2].split(",")[0], "", 1)  # row 1: income missing
    lines[4] = ",".join([*lines[4].split(",")[:2], "2.5"])  # row 3: years not whole
    (work / "in.csv").write_text("\n".join(lines) + "\n")
    done = keel(
        "models:/credit/1", "in.csv", "-o", "out.csv", "--rejects", "rejects.csv",
        "--id-column", "years", code=2,
    )  # fmt: skip
    assert "scored 4 of 6 rows" in done.stdout
    err = _error(done)
    assert "rejected 2 rows (2 problems) -> rejects.csv" in err
    assert "column 'income' is missing but the column does not allow missing values: 1" in err
    rejects = pd.read_csv(work / "rejects.csv", keep_default_na=False)
    assert rejects.to_dict("records") == [
        {"row": 1, "column": "income", "reason": rejects["reason"][0], "value": ""},
        {"row": 3, "column": "years", "reason": "is not a whole number", "value": "2.5"},
    ]
    out = pd.read_csv(work / "out.csv")
    assert list(out.columns) == ["row", "years", "prediction", "proba_False", "proba_True"]
    assert out["row"].tolist() == [0, 2, 4, 5]
    summary = json.loads(
        keel("models:/credit/1", "in.csv", "-o", "out.csv", "--force", "--json", code=2).stdout
    )
    assert summary["rows_rejected"] == 2
    assert summary["rejects"] is None


def test_errors_exit_1_and_write_nothing(
    keel: Keel, seeded: tuple[Path, pd.DataFrame, Any], work: Path
) -> None:
    _, frame, _ = seeded
    frame.drop(columns=["debt"]).to_csv(work / "nodebt.csv", index=False)
    frame.to_csv(work / "in.csv", index=False)
    done = keel("models:/credit@champion", "nodebt.csv", "-o", "out.parquet", code=1)
    assert "has no column 'debt', which the model needs, so no row can be scored" in _error(done)
    done = keel("models:/credit@staging", "in.csv", "-o", "out.parquet", code=1)
    assert "has no alias 'staging'" in _error(done)
    done = keel("credit", "in.csv", "-o", "out.parquet", code=1)
    assert "invalid model URI 'credit'" in _error(done)
    done = keel("models:/credit/1", "missing.csv", "-o", "out.parquet", code=1)
    assert "does not exist" in _error(done)
    done = keel("models:/credit/1", "in.csv", "-o", "out.txt", code=1)
    assert "must end in .parquet or .csv" in _error(done)
    assert sorted(p.name for p in work.iterdir()) == ["in.csv", "nodebt.csv"]
    error = json.loads(keel("credit", "in.csv", "-o", "o.csv", "--json", code=1).stdout)
    assert error["error"]["code"] == "INVALID_ARGUMENT"


def test_force_replaces_an_existing_output(
    keel: Keel, seeded: tuple[Path, pd.DataFrame, Any], work: Path
) -> None:
    _, frame, _ = seeded
    frame.to_parquet(work / "in.parquet")
    (work / "out.parquet").write_text("keep me")
    done = keel("models:/credit@champion", "in.parquet", "-o", "out.parquet", code=1)
    assert "already exists; pass --force" in _error(done)
    assert (work / "out.parquet").read_text() == "keep me"
    done = keel("models:/credit@champion", "in.parquet", "-o", "out.parquet", "--force")
    assert "scored 500 of 500 rows" in done.stdout
    assert pq.read_table(work / "out.parquet").num_rows == 500
    assert sorted(p.name for p in work.iterdir()) == ["in.parquet", "out.parquet"]


def test_help_lists_predict(keel: Keel) -> None:
    done = subprocess.run([KEEL, "--help"], capture_output=True, text=True, check=False)
    assert "predict" in done.stdout
    usage = keel("--help").stdout
    assert "--chunk-size" in usage
    assert "--rejects" in usage
    assert "--id-column" in usage
