"""``keel demo``: the whole tracking loop through the installed console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

KEEL = Path(sys.executable).with_name("keel")


def _keel(home: Path, *args: str) -> Any:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    done = subprocess.run(
        [str(KEEL), *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return json.loads(done.stdout)


def test_demo_trains_and_tracks_the_grid(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = _keel(home, "demo", "--rows", "3000")

    assert summary["experiment"] == "credit-demo"
    runs = summary["runs"]
    assert len(runs) == 6
    assert {r["family"] for r in runs} == {
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
    }
    assert all(0.5 < r["auc"] <= 1.0 for r in runs)
    assert [r["auc"] for r in runs] == sorted((r["auc"] for r in runs), reverse=True)
    assert summary["best"] == runs[0]
    assert summary["store_uri"] == f"sqlite:///{home / 'keel.db'}"

    listed = _keel(home, "runs", "list", "-e", "credit-demo")
    assert len(listed) == 7
    parent_id = summary["parent_run_id"]
    by_id = {r["id"]: r for r in listed}
    parent = by_id.pop(parent_id)
    assert parent["parent_id"] is None
    assert parent["tags"]["best_run"] == summary["best"]["run_id"]
    assert parent["metrics"]["best_auc"] == summary["best"]["auc"]
    assert set(by_id) == {r["run_id"] for r in runs}
    for result in runs:
        child = by_id[result["run_id"]]
        assert child["parent_id"] == parent_id
        assert child["status"] == "FINISHED"
        assert child["params"]["model"] == result["family"]
        assert child["metrics"]["auc"] == result["auc"]
        expected_tags = {"family": result["family"]}
        if result["run_id"] == summary["best"]["run_id"]:
            expected_tags["keel.gate"] = "passed" if summary["gate_passed"] else "failed"
        assert child["tags"] == expected_tags

    for result in runs:
        shown = _keel(home, "runs", "show", result["run_id"])
        names = {a["name"] for a in shown["artifacts"]}
        assert {"features.json", "model/keel-model.json"} <= names
        assert ("evaluation/report.json" in names) == (
            result["run_id"] == summary["best"]["run_id"]
        )


def test_demo_versions_validates_and_splits_its_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = _keel(home, "demo", "--rows", "3000")

    assert summary["dataset"] == "credit@v1"
    assert summary["splits"] == {
        "train": "credit-train@v1",
        "val": "credit-val@v1",
        "test": "credit-test@v1",
    }
    assert summary["validation_passed"] is True
    assert summary["leakage_passed"] is True
    report = Path(summary["validation_report"])
    assert report.is_file()
    assert "<html" in report.read_text(encoding="utf-8").lower()

    lineage = _keel(home, "data", "lineage", "credit@v1")
    text = json.dumps(lineage)
    for split in ("credit-train@v1", "credit-val@v1", "credit-test@v1"):
        assert split in text
    assert summary["parent_run_id"] in text
    train_lineage = json.dumps(_keel(home, "data", "lineage", "credit-train@v1"))
    for result in summary["runs"]:
        assert result["run_id"] in train_lineage

    # Running the demo again reuses the same data versions: nothing new is versioned.
    again = _keel(home, "demo", "--rows", "3000")
    assert again["dataset"] == "credit@v1"
    assert again["splits"] == summary["splits"]


def test_demo_gates_registers_and_promotes_its_best_model(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = _keel(home, "demo", "--rows", "4000")

    assert summary["model"] == "credit-approval"
    assert summary["model_version"] == 1
    assert summary["gate_passed"] is summary["champion"]
    assert 0.5 < summary["test_auc"] <= 1.0
    for key in ("evaluation_report", "model_card"):
        assert Path(summary[key]).is_file()

    shown = _keel(home, "models", "show", "credit-approval/1")
    text = json.dumps(shown)
    assert summary["best"]["run_id"] in text
    if summary["champion"]:
        assert "champion" in text
    best_run = _keel(home, "runs", "show", summary["best"]["run_id"])
    assert best_run["tags"]["keel.gate"] == ("passed" if summary["gate_passed"] else "failed")
    artifact_names = {a["name"] for a in best_run["artifacts"]}
    assert {"model/keel-model.json", "evaluation/report.json", "evaluation/gate.json"} <= (
        artifact_names
    )


def test_demo_serves_its_champion_and_logs_the_traffic(tmp_path: Path) -> None:
    home = tmp_path / "home"
    summary = _keel(home, "demo", "--rows", "4000")
    assert summary["champion"], "the demo's best model should pass its gate"
    serving = summary["serving"]
    assert serving["deployment"] == "credit"
    assert serving["model_version"] == summary["model_version"]
    statuses = serving["statuses"]
    assert statuses["422"] == 6  # the planted client bugs, refused before the model ran
    assert statuses["200"] == serving["requests"] - 6
    assert 0 < serving["predict_calls"] <= statuses["200"]
    segments = list(Path(serving["prediction_log"]).rglob("*.parquet"))
    assert segments, "the prediction log holds the served rows"
    deployment = _keel(home, "deploy", "show", "credit")
    assert "credit-approval@champion" in json.dumps(deployment)
    assert serving["drifted_rows"] > 0
    monitoring = summary["monitoring"]
    assert monitoring["windows"] >= 1
    assert "drift_share > 0.3" in monitoring["alerts"]  # the planted recession is caught
    assert monitoring["metrics"]["drift_share"] > 0.3
    assert (
        abs(monitoring["metrics"]["estimated_accuracy"] - monitoring["metrics"]["accuracy"]) < 0.1
    )
    assert Path(monitoring["monitor_report"]).is_file()
    alerts = _keel(home, "monitor", "alerts", "credit")
    assert "drift_share > 0.3" in json.dumps(alerts)
