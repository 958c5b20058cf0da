"""``keel models`` end to end: the installed CLI in a subprocess, KEEL_HOME in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from keel.core._models import DESCRIPTOR, EVALUATION_ARTIFACT, GATE_TAG
from keel.registry import ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import MetadataStore
from keel.testing.conformance_registry import registry_snapshot
from keel.tracking import TrackingService

KEEL = str(Path(sys.executable).with_name("keel"))
Keel = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A KEEL_HOME holding model 'credit': v1 (gate failed), v2 and v3 (gate passed)."""
    home = tmp_path / "home"
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    tracking = TrackingService(
        store, LocalArtifactStore(home / "artifacts"), capture_environment=False
    )
    registry = RegistryService(ModelRegistryStore(store.engine), tracking)
    for gate, auc in (("failed", 0.7), ("passed", 0.85), ("passed", 0.9)):
        run = tracking.create_run("e2e")
        tracking.log_bytes(run.id, b'{"flavor": "pyfunc"}', f"model/{DESCRIPTOR}")
        tracking.log_metrics(run.id, {"auc": auc})
        tracking.log_params(run.id, {"C": str(auc)})
        tracking.set_tags(run.id, {GATE_TAG: gate})
        report = {
            "metrics": {"auc": {"value": auc, "low": None, "high": None}},
            "slices": [{"slice": "gender", "value": "f", "count": 9, "metrics": {"auc": auc}}],
        }
        tracking.log_bytes(run.id, orjson.dumps(report), EVALUATION_ARTIFACT)
        tracking.end_run(run.id)
        registry.register_model(f"runs:/{run.id}/model", "credit", tags={"domain": "credit"})
    tracking.close()
    store.close()
    return home


@pytest.fixture
def keel(home: Path, tmp_path: Path) -> Keel:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false", COLUMNS="200")

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KEEL, "models", *args], env=env, capture_output=True, text=True, cwd=tmp_path
        )
        assert done.returncode == code, done.stderr
        return done

    return run


def _snapshot(home: Path) -> dict[str, list[tuple[object, ...]]]:
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    try:
        return registry_snapshot(store.engine)
    finally:
        store.close()


def test_models_cli_round_trip(keel: Keel, home: Path, tmp_path: Path) -> None:
    listed = json.loads(keel("list", "--json").stdout)
    assert [(m["name"], m["latest_version"]) for m in listed] == [("credit", 3)]
    assert "credit" in keel("list").stdout
    found = json.loads(
        keel("search", "tags.domain = 'credit' and metrics.auc > 0.8", "--json").stdout
    )
    assert [v["version"] for v in found] == [2, 3]
    assert "promoted" not in keel("promote", "credit", "2").stdout
    assert "credit@champion -> version 3" in keel("promote", "credit", "3").stdout
    shown = json.loads(keel("show", "credit@champion", "--json").stdout)
    assert (shown["version"], shown["aliases"]) == (3, ["champion"])
    rolled = json.loads(keel("rollback", "credit", "--actor", "ops", "--json").stdout)
    assert rolled["version"] == 2
    history = json.loads(keel("show", "credit", "--json").stdout)["alias_history"]
    assert [h["action"] for h in history] == ["set", "set", "rollback"]
    assert "rollback" in keel("show", "credit").stdout
    lineage = json.loads(keel("lineage", "credit/2", "--json").stdout)
    assert lineage["metrics"] == {"auc": 0.85}
    assert "param" in keel("lineage", "credit/2").stdout
    page = tmp_path / "card.html"
    card = keel("card", "credit/2", "--html", str(page), "--intended-use", "credit <demo>").stdout
    assert "| gender = f | 9 | 0.85 |" in card
    assert "&lt;demo&gt;" in page.read_text()
    assert json.loads(keel("deprecate", "credit", "1", "--json").stdout)["status"] == "deprecated"
    assert "archived credit/1" in keel("archive", "credit", "1").stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("promote", "credit", "1"), "gate failed"),
        (("promote", "credit", "1", "--override", "--actor", "ada"), "needs an actor and a reason"),
        (("promote", "credit", "9"), "has no version 9"),
        (("promote", "nope", "1"), "no registered model 'nope'"),
        (("promote", "credit", "2", "--alias", "v2"), "invalid alias"),
        (("promote", "bad/name", "2"), "invalid model name"),
        (("show", "credit@staging"), "has no alias 'staging'"),
        (("rollback", "credit"), "has no alias 'champion'"),
        (("search", "metrics.auc >"), "expected a value"),
        (("search", "color = 'red'"), "unknown attribute 'color'"),
        (("card", "credit/7"), "has no version 7"),
        (("archive", "credit", "x"), "positive integer"),
    ],
)
def test_bad_input_exits_1_and_changes_nothing(
    keel: Keel, home: Path, args: tuple[str, ...], message: str
) -> None:
    before = _snapshot(home)
    done = keel(*args, code=1)
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(home) == before
    as_json = json.loads(keel(*args, "--json", code=1).stdout)
    assert as_json["error"]["code"] in {
        "NOT_FOUND",
        "INVALID_ARGUMENT",
        "INVALID_FILTER",
        "CONFLICT",
    }
