"""The installed ``keel`` console script, run as a user would, against a scratch KEEL_HOME."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

KEEL = Path(sys.executable).with_name("keel")
MARKUP_NAME = "[bold red]x[/]"

POPULATE = textwrap.dedent(
    """
    import json
    import keel

    MARKUP_NAME = MARKUP_NAME_VALUE

    ids = {}
    with keel.start_run(experiment="X", run_name="good") as run:
        keel.log_params({"model": "lr", "C": 0.1})
        keel.log_metric("auc", 0.9)
        keel.set_tag("team", "risk")
        keel.log_text("hello", "notes.txt")
        ids["good"] = run.id
    with keel.start_run(experiment="X", run_name="weak") as run:
        keel.log_params({"model": "rf"})
        keel.log_metric("auc", 0.4)
        ids["weak"] = run.id
    with keel.start_run(experiment="X", run_name=MARKUP_NAME) as run:
        keel.log_metric("auc", 0.75)
        ids["markup"] = run.id
    with keel.start_run(experiment="Y", run_name="elsewhere") as run:
        keel.log_metric("auc", 0.99)
        ids["elsewhere"] = run.id
    print(json.dumps(ids))
    """
).replace("MARKUP_NAME_VALUE", repr(MARKUP_NAME))


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update({"KEEL_HOME": str(home), "COLUMNS": "200", "NO_COLOR": "1"}, **extra)
    return env


def keel(home: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(KEEL), *args],
        env=_env(home, **extra_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def ok_json(home: Path, *args: str) -> Any:
    done = keel(home, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def failed(done: subprocess.CompletedProcess[str]) -> str:
    """The error text of a command that failed cleanly, whitespace-normalised."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "Traceback" not in done.stdout
    return " ".join(done.stderr.split())


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    home = tmp_path_factory.mktemp("cli") / "home"
    script = home.parent / "populate.py"
    script.write_text(POPULATE, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return home, ids


def test_console_script_is_installed() -> None:
    assert KEEL.exists(), f"no keel script next to {sys.executable}"


def test_version(tmp_path: Path) -> None:
    from keel import __version__

    done = keel(tmp_path, "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"keel {__version__}"
    assert not tmp_path.joinpath("keel.db").exists()


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = keel(tmp_path, "--help")
    assert done.returncode == 0
    for command in ("experiments", "runs", "config", "demo"):
        assert command in done.stdout


def test_no_arguments_shows_help(tmp_path: Path) -> None:
    done = keel(tmp_path)
    assert "Usage" in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_config_json_shows_every_variable_and_the_resolved_stores(tmp_path: Path) -> None:
    from keel.config import SETTINGS

    home = tmp_path / "home"
    data = ok_json(home, "config")
    by_name = {entry["name"]: entry for entry in data}
    assert {s.name for s in SETTINGS} <= set(by_name)
    assert by_name["KEEL_HOME"]["value"] == str(home)
    assert by_name["KEEL_HOME"]["default"] == "./.keel"
    assert by_name["KEEL_FLUSH_INTERVAL"]["value"] == 0.5
    assert by_name["(resolved store)"]["value"] == f"sqlite:///{home / 'keel.db'}"
    assert by_name["(resolved artifacts)"]["value"] == (home / "artifacts").as_uri()
    assert all(entry.get("doc", "x") for entry in data)


def test_config_table(tmp_path: Path) -> None:
    done = keel(tmp_path, "config")
    assert done.returncode == 0
    assert "KEEL_HOME" in done.stdout
    assert f"metadata store: sqlite:///{tmp_path / 'keel.db'}" in done.stdout


def test_config_with_an_invalid_variable_fails_cleanly(tmp_path: Path) -> None:
    message = failed(keel(tmp_path, "config", KEEL_CAPTURE_ENVIRONMENT="maybe"))
    assert "KEEL_CAPTURE_ENVIRONMENT" in message


def test_experiments_list_json(populated: tuple[Path, dict[str, str]]) -> None:
    home, _ = populated
    data = ok_json(home, "experiments", "list")
    counts = {entry["name"]: entry["runs"] for entry in data}
    assert counts == {"X": 3, "Y": 1}
    assert all(len(entry["id"]) == 32 for entry in data)


def test_experiments_list_table(populated: tuple[Path, dict[str, str]]) -> None:
    home, _ = populated
    done = keel(home, "experiments", "list")
    assert done.returncode == 0
    assert "X" in done.stdout
    assert "Y" in done.stdout


def test_runs_list_json_filters_by_experiment(populated: tuple[Path, dict[str, str]]) -> None:
    home, ids = populated
    data = ok_json(home, "runs", "list", "-e", "X")
    assert sorted(r["id"] for r in data) == sorted([ids["good"], ids["weak"], ids["markup"]])
    good = next(r for r in data if r["id"] == ids["good"])
    assert good["name"] == "good"
    assert good["status"] == "FINISHED"
    assert good["params"] == {"model": "lr", "C": "0.1"}
    assert good["metrics"] == {"auc": 0.9}
    assert good["tags"] == {"team": "risk"}
    assert len(ok_json(home, "runs", "list")) == 4
    assert len(ok_json(home, "runs", "list", "-e", "X", "-e", "Y")) == 4
    assert len(ok_json(home, "runs", "list", "-n", "2")) == 2


def test_runs_search_json(populated: tuple[Path, dict[str, str]]) -> None:
    home, ids = populated
    data = ok_json(home, "runs", "search", "metrics.auc > 0.5", "-o", "metrics.auc DESC")
    assert [r["id"] for r in data] == [ids["elsewhere"], ids["good"], ids["markup"]]
    data = ok_json(home, "runs", "search", "metrics.auc > 0.5 and params.model = 'lr'", "-e", "X")
    assert [r["id"] for r in data] == [ids["good"]]


def test_runs_show_json(populated: tuple[Path, dict[str, str]]) -> None:
    home, ids = populated
    data = ok_json(home, "runs", "show", ids["good"])
    assert data["id"] == ids["good"]
    assert data["name"] == "good"
    assert data["params"] == {"model": "lr", "C": "0.1"}
    assert data["metrics"] == {"auc": 0.9}
    assert [a["name"] for a in data["artifacts"]] == ["notes.txt"]
    assert data["artifacts"][0]["size"] == 5
    assert data["environment"]["python"] == platform.python_version()
    assert "packages" not in data["environment"]
    assert data["source"]["command"][0] == sys.executable


def test_runs_show_table(populated: tuple[Path, dict[str, str]]) -> None:
    home, ids = populated
    done = keel(home, "runs", "show", ids["good"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(ids["good"] in line for line in lines)
    assert any("param" in line and "model" in line and "lr" in line for line in lines)
    assert any("metric" in line and "auc" in line and "0.9" in line for line in lines)
    assert any("artifact" in line and "notes.txt" in line for line in lines)
    assert any("tag" in line and "team" in line and "risk" in line for line in lines)


def test_runs_delete_removes_the_run_from_listings(tmp_path: Path) -> None:
    home = tmp_path / "home"
    script = tmp_path / "populate.py"
    script.write_text(POPULATE, encoding="utf-8")
    populate = subprocess.run(
        [sys.executable, str(script)], env=_env(home), capture_output=True, text=True, check=False
    )
    assert populate.returncode == 0, populate.stderr
    ids = json.loads(populate.stdout.strip().splitlines()[-1])

    done = keel(home, "runs", "delete", ids["weak"])
    assert done.returncode == 0, done.stderr
    assert ids["weak"] in done.stdout
    listed = [r["id"] for r in ok_json(home, "runs", "list", "-e", "X")]
    assert ids["weak"] not in listed
    assert len(listed) == 2
    assert ids["weak"] not in [r["id"] for r in ok_json(home, "runs", "search", "metrics.auc < 1")]
    assert "keel runs list" in failed(keel(home, "runs", "show", ids["weak"]))
    assert "keel runs list" in failed(keel(home, "runs", "delete", ids["weak"]))
    assert {e["name"]: e["runs"] for e in ok_json(home, "experiments", "list")}["X"] == 2


def test_malformed_filter_exits_1_with_its_position(
    populated: tuple[Path, dict[str, str]],
) -> None:
    home, _ = populated
    message = failed(keel(home, "runs", "search", "metrics.auc >"))
    assert "position 13" in message
    assert "^" in message


def test_malformed_filter_as_json(populated: tuple[Path, dict[str, str]]) -> None:
    home, _ = populated
    done = keel(home, "runs", "search", "metrics.auc >", "--json")
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["code"] == "INVALID_FILTER"
    assert error["position"] == 13
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("run_id", ["f" * 32, "not-an-id"])
def test_unknown_run_names_keel_runs_list(
    populated: tuple[Path, dict[str, str]], run_id: str
) -> None:
    home, _ = populated
    message = failed(keel(home, "runs", "show", run_id))
    assert run_id in message
    assert "`keel runs list`" in message


def test_unknown_experiment_names_keel_experiments_list(
    populated: tuple[Path, dict[str, str]],
) -> None:
    home, _ = populated
    message = failed(keel(home, "runs", "list", "-e", "nope"))
    assert "`keel experiments list`" in message


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "list"),
        ("runs", "show", "f" * 32),
        ("runs", "delete", "f" * 32),
        ("runs", "search", "metrics.auc > 0"),
        ("experiments", "list"),
    ],
    ids=" ".join,
)
def test_invalid_configuration_fails_cleanly_in_every_command(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    message = failed(keel(tmp_path, *args, KEEL_FLUSH_INTERVAL="-1"))
    assert "KEEL_FLUSH_INTERVAL" in message


def test_rich_markup_in_run_names_is_printed_literally(
    populated: tuple[Path, dict[str, str]],
) -> None:
    home, ids = populated
    listing = keel(home, "runs", "list", "-e", "X")
    assert listing.returncode == 0
    assert MARKUP_NAME in listing.stdout
    shown = keel(home, "runs", "show", ids["markup"])
    assert shown.returncode == 0
    assert MARKUP_NAME in shown.stdout
    searched = keel(home, "runs", "search", "metrics.auc > 0.7")
    assert MARKUP_NAME in searched.stdout


def test_runs_list_table_shows_full_run_ids(populated: tuple[Path, dict[str, str]]) -> None:
    home, ids = populated
    done = keel(home, "runs", "list")
    assert done.returncode == 0
    for run_id in ids.values():
        assert run_id in done.stdout
