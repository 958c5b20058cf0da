"""``keel deploy`` end to end: the installed CLI in a subprocess, KEEL_HOME in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from keel.core._deployments import DeploymentPolicy
from keel.models import ModelService
from keel.registry import ModelRegistryStore, RegistryService
from keel.stores.artifacts import LocalArtifactStore
from keel.stores.metadata import DeploymentStore, MetadataStore
from keel.testing.conformance_deployments import deployment_snapshot
from keel.tracking import TrackingService

KEEL = str(Path(sys.executable).with_name("keel"))
Keel = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A KEEL_HOME holding model 'credit' v1-v4 (champion = v2, challenger = v3, v4
    archived), a package logged to a run but never registered, and deployment 'existing'."""
    home = tmp_path_factory.mktemp("deploy") / "home"
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    tracking = TrackingService(
        store, LocalArtifactStore(home / "artifacts"), capture_environment=False
    )
    models = ModelService(tracking)
    registry = RegistryService(ModelRegistryStore(store.engine), tracking)
    rows = np.array([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]])
    labels = np.array([0, 1, 0, 1])
    runs = []
    for c in (0.1, 1.0, 10.0, 100.0, 1000.0):
        run = tracking.create_run("deploy-e2e")
        models.log_model(run.id, LogisticRegression(C=c).fit(rows, labels), input_example=rows)
        tracking.end_run(run.id)
        runs.append(run.id)
    for run_id in runs[:4]:
        registry.register_model(f"runs:/{run_id}/model", "credit")
    registry.set_alias("credit", "champion", 2, actor="ada", reason="e2e", override=True)
    registry.set_alias("credit", "challenger", 3)
    registry.archive("credit", 4)
    DeploymentStore(store.engine).create(
        "existing", DeploymentPolicy.single("models:/credit@champion")
    )
    tracking.close()
    store.close()
    return home, {"unregistered": f"runs:/{runs[4]}/model"}


@pytest.fixture
def home(seeded: tuple[Path, dict[str, str]], tmp_path: Path) -> Path:
    """A private copy of the seeded home, so tests do not see each other's deployments."""
    import shutil

    copy = tmp_path / "home"
    shutil.copytree(seeded[0], copy)
    return copy


@pytest.fixture
def keel(home: Path, tmp_path: Path) -> Keel:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(home), KEEL_CAPTURE_ENVIRONMENT="false", COLUMNS="250", NO_COLOR="1")

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KEEL, "deploy", *args],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )
        assert done.returncode == code, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done

    return run


def _json(keel: Keel, *args: str) -> Any:
    return json.loads(keel(*args, "--json").stdout)


def _snapshot(home: Path) -> dict[str, list[tuple[object, ...]]]:
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    try:
        return deployment_snapshot(store.engine)
    finally:
        store.close()


def test_deploy_cli_round_trip(keel: Keel) -> None:
    created = _json(keel, "create", "credit", "--model", "models:/credit@champion", "-m", "scoring")
    assert (created["revision"], created["description"]) == (1, "scoring")
    assert created["policy"]["mode"] == "single"
    shown = _json(keel, "show", "credit")
    [primary] = shown["variants"]
    assert primary == {
        "variant": "primary",
        "role": "route",
        "uri": "models:/credit@champion",
        "traffic": 100.0,
        "resolved": "models:/credit/2",
        "source": primary["source"],
        "status": "active",
        "problem": None,
    }
    assert primary["source"].startswith("runs:/")

    canary = _json(
        keel,
        "update", "credit",
        "--canary", "models:/credit/3", "--percent", "10", "--max-error-increase", "0.05",
        "--min-requests", "20", "--reason", "try v3", "--actor", "ada",
    )  # fmt: skip
    assert canary["revision"] == 2
    assert canary["policy"]["canary"] == {
        "name": "canary",
        "model": "models:/credit/3",
        "percent": 10.0,
        "max_error_rate_increase": 0.05,
        "max_latency_ratio": 2.0,
        "min_requests": 20,
    }
    ramped = _json(keel, "update", "credit", "--percent", "25")
    assert ramped["policy"]["canary"]["percent"] == 25.0
    assert ramped["policy"]["canary"]["min_requests"] == 20  # the rest kept
    assert ramped["policy"]["routes"] == canary["policy"]["routes"]
    assert ramped["description"] == "scoring"

    shadowed = _json(keel, "update", "credit", "--shadow", "models:/credit@challenger")
    assert shadowed["policy"]["mode"] == "canary+shadow"
    shares = {v["variant"]: v["traffic"] for v in _json(keel, "show", "credit")["variants"]}
    assert shares == {"primary": 75.0, "canary": 25.0, "shadow": None}

    split = _json(
        keel, "update", "credit", "--no-canary", "--weight", "3", "--ab", "models:/credit/1=1"
    )
    assert split["policy"]["mode"] == "ab+shadow"
    assert split["policy"]["routes"] == [
        {"name": "primary", "model": "models:/credit@champion", "weight": 3.0},
        {"name": "variant-2", "model": "models:/credit/1", "weight": 1.0},
    ]
    table = keel("show", "credit").stdout
    assert "variant-2" in table
    assert "75%" in table
    assert "models:/credit/2" in table  # the alias resolved to its version
    single = _json(keel, "update", "credit", "--no-ab", "--no-shadow", "-m", "back to one")
    assert (single["policy"]["mode"], single["description"]) == ("single", "back to one")

    unchanged = _json(keel, "update", "credit", "--model", "models:/credit@champion")
    assert unchanged["revision"] == single["revision"] == 6  # nothing changed, nothing recorded

    history = _json(keel, "history", "credit")
    assert [(e["revision"], e["kind"]) for e in history] == [
        (1, "create"),
        (2, "update"),
        (3, "update"),
        (4, "update"),
        (5, "update"),
        (6, "update"),
    ]
    assert (history[1]["actor"], history[1]["reason"]) == ("ada", "try v3")
    assert "try v3" in keel("history", "credit").stdout

    listed = _json(keel, "list")
    assert [(d["name"], d["revision"]) for d in listed] == [("credit", 6), ("existing", 1)]
    assert "credit" in keel("list").stdout

    assert "deleted deployment 'credit'" in keel("delete", "credit", "--yes").stdout
    assert [d["name"] for d in _json(keel, "list")] == ["existing"]


def test_an_alias_move_shows_without_a_new_revision(keel: Keel, home: Path) -> None:
    keel("create", "credit", "--model", "models:/credit@champion")
    store = MetadataStore.open(f"sqlite:///{home / 'keel.db'}")
    tracking = TrackingService(store, LocalArtifactStore(home / "artifacts"))
    RegistryService(ModelRegistryStore(store.engine), tracking).set_alias(
        "credit", "champion", 3, actor="ada", reason="better", override=True
    )
    tracking.close()
    store.close()
    shown = _json(keel, "show", "credit")
    assert shown["revision"] == 1
    assert shown["variants"][0]["resolved"] == "models:/credit/3"


def test_a_run_package_can_be_deployed(keel: Keel, seeded: tuple[Path, dict[str, str]]) -> None:
    uri = seeded[1]["unregistered"]
    created = _json(keel, "create", "raw", "--model", uri)
    assert created["policy"]["routes"][0]["model"] == uri
    [variant] = _json(keel, "show", "raw")["variants"]
    assert (variant["resolved"], variant["source"], variant["problem"]) == (uri, uri, None)


def test_policies_from_yaml_and_json_files(keel: Keel, tmp_path: Path) -> None:
    policy = {
        "routes": [
            {"model": "models:/credit@champion", "weight": 0.9},
            {"name": "challenger", "model": "models:/credit@challenger", "weight": 0.1},
        ],
        "shadow": "models:/credit/1",
    }
    spec = tmp_path / "policy.yaml"
    spec.write_text(yaml.safe_dump(policy), encoding="utf-8")
    created = _json(keel, "create", "credit", "--from-file", str(spec), "-m", "from yaml")
    assert created["policy"]["mode"] == "ab+shadow"
    assert created["policy"]["routes"][1]["name"] == "challenger"
    # `show --json` output is accepted as it is, and sets the whole policy
    exported = tmp_path / "credit.json"
    exported.write_text(keel("show", "credit", "--json").stdout, encoding="utf-8")
    copy = _json(keel, "create", "credit-copy", "--from-file", str(exported))
    assert copy["policy"] == created["policy"]
    spec.write_text(
        yaml.safe_dump({"routes": [{"model": "models:/credit/3"}], "canary": None}),
        encoding="utf-8",
    )
    updated = _json(keel, "update", "credit", "--from-file", str(spec), "--reason", "reset")
    assert (updated["revision"], updated["policy"]["mode"]) == (2, "single")
    assert updated["description"] == "from yaml"


ONE = "create credit --model models:/credit/1"
BAD_INPUT = [
    ("create credit --model models:/nope@champion", "no registered model 'nope'", "NOT_FOUND"),
    ("create credit --model models:/credit/9", "has no version 9", "NOT_FOUND"),
    ("create credit --model models:/credit@staging", "has no alias 'staging'", "NOT_FOUND"),
    ("create credit --model models:/credit/4", "is archived", "INVALID_ARGUMENT"),
    (f"create credit --model runs:/{'0' * 32}/model", "keel models list", "NOT_FOUND"),
    ("create credit --model credit", "policy.routes[0].model", "INVALID_ARGUMENT"),
    ("create credit", "--model URI", "INVALID_ARGUMENT"),
    ("create Credit --model models:/credit/1", "invalid deployment name", "INVALID_ARGUMENT"),
    ("create existing --model models:/credit/1", "keel deploy update existing", "ALREADY_EXISTS"),
    (f"{ONE} --canary models:/credit/2", "--percent", "INVALID_ARGUMENT"),
    (f"{ONE} --percent 5", "--canary URI", "INVALID_ARGUMENT"),
    (f"{ONE} --canary models:/credit/2 --percent 150", "policy.canary.percent", "INVALID_ARGUMENT"),
    (f"{ONE} --ab models:/credit/2", "URI=WEIGHT", "INVALID_ARGUMENT"),
    (f"{ONE} --ab models:/credit/2=-1", "policy.routes[1].weight", "INVALID_ARGUMENT"),
    (f"{ONE} --shadow models:/credit/9", "'shadow' model models:/credit/9", "NOT_FOUND"),
    (f"{ONE} --from-file x.yaml", "--from-file sets the whole policy", "INVALID_ARGUMENT"),
    ("create credit --from-file missing.yaml", "no policy file", "NOT_FOUND"),
    ("update existing", "nothing to change", "INVALID_ARGUMENT"),
    ("update existing --percent 5", "--canary URI", "INVALID_ARGUMENT"),
    ("update existing --canary models:/credit/2 --no-canary", "contradict", "INVALID_ARGUMENT"),
    ("update existing --model models:/credit/9", "has no version 9", "NOT_FOUND"),
    ("update nope --model models:/credit/1", "keel deploy list", "NOT_FOUND"),
    ("show nope", "no deployment 'nope'", "NOT_FOUND"),
    ("history nope", "keel deploy list", "NOT_FOUND"),
    ("delete nope --yes", "keel deploy list", "NOT_FOUND"),
    ("delete existing", "pass --yes", "INVALID_ARGUMENT"),
]


@pytest.mark.parametrize(("args", "message", "code"), BAD_INPUT, ids=[a for a, _, _ in BAD_INPUT])
def test_bad_input_exits_1_and_changes_nothing(
    keel: Keel, home: Path, args: str, message: str, code: str
) -> None:
    before = _snapshot(home)
    done = keel(*args.split(), code=1)
    assert message in " ".join(done.stderr.split())
    assert _snapshot(home) == before
    as_json = json.loads(keel(*args.split(), "--json", code=1).stdout)
    assert as_json["error"]["code"] == code
    assert message in as_json["error"]["message"]


@pytest.mark.parametrize(
    ("text", "suffix", "message"),
    [
        ("routes: [model: x", ".yaml", "is not valid YAML"),
        ("{", ".json", "is not valid JSON"),
        ("- 1\n- 2\n", ".yaml", "must be an object"),
        (
            "routes:\n  - model: models:/credit/1\n    weight: 0\n",
            ".yml",
            "policy.routes[0].weight",
        ),
    ],
)
def test_a_bad_policy_file_is_refused(
    keel: Keel, tmp_path: Path, text: str, suffix: str, message: str
) -> None:
    spec = tmp_path / f"policy{suffix}"
    spec.write_text(text, encoding="utf-8")
    done = keel("create", "credit", "--from-file", str(spec), code=1)
    assert message in " ".join(done.stderr.split())
    assert "policy" in done.stderr


def test_deploy_help_loads_no_heavy_library(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "import keel.cli\n"
        "for argv in (['--help'], ['deploy', '--help'], ['deploy', 'create', '--help']):\n"
        "    try:\n"
        "        keel.cli.main(argv)\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
        "heavy = ('pandas', 'sklearn', 'sqlalchemy', 'fastapi')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        | {"KEEL_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    assert "deploy" in done.stdout
    assert "--canary" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
