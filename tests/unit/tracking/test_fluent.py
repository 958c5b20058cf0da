"""The module-level tracking API (``keel.start_run`` and friends) over a real KEEL_HOME."""

from __future__ import annotations

import getpass
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import keel
from keel import _fluent
from keel.context import get_context, reset_context
from keel.core._entities import Run
from keel.errors import Conflict, FilterSyntaxError, InvalidArgument, KeelError, NotFound
from keel.tracking import _environment

UNKNOWN_RUN = "f" * 32


@pytest.fixture(autouse=True)
def home(keel_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(_fluent, "_experiment", None)  # set_experiment is process state
    return keel_home


def _db(home: Path) -> sqlite3.Connection:
    return sqlite3.connect(home / "keel.db")


# the README example ------------------------------------------------------------------


def test_readme_example_end_to_end() -> None:
    with keel.start_run(experiment="credit", run_name="lr-1") as run:
        keel.log_params({"C": 0.1, "penalty": "l2"})
        for step in range(100):
            keel.log_metric("loss", 1 / (step + 1), step=step)
        keel.log_dict({"features": ["age", "income"]}, "config.json")

    runs = keel.search_runs(
        experiment="credit",
        filter="metrics.loss < 0.5 and params.penalty = 'l2'",
        order_by=["metrics.loss ASC"],
    )
    history = keel.get_metric_history(run.id, "loss")

    assert runs["run_id"].tolist() == [run.id]
    assert runs["run_name"].tolist() == ["lr-1"]
    assert runs["status"].tolist() == ["FINISHED"]
    assert runs["params.C"].tolist() == ["0.1"]
    assert runs["params.penalty"].tolist() == ["l2"]
    assert runs["metrics.loss"].tolist() == [0.01]
    assert history.steps.tolist() == list(range(100))
    assert np.array_equal(history.values, 1 / (np.arange(100) + 1))
    assert np.all(np.diff(history.timestamps) >= 0)
    assert len(history) == 100
    stored = keel.get_run(run.id)
    assert stored.end_time is not None
    assert stored.end_time >= stored.start_time
    assert [a.name for a in keel.list_artifacts(run.id)] == ["config.json"]
    body = get_context().tracking.read_artifact(run.id, "config.json")
    assert json.loads(body) == {"features": ["age", "income"]}


def test_search_excludes_runs_that_do_not_match() -> None:
    with keel.start_run(experiment="credit", run_name="a"):
        keel.log_metric("auc", 0.9)
        keel.log_param("model", "lr")
    with keel.start_run(experiment="credit", run_name="b"):
        keel.log_metric("auc", 0.6)
        keel.log_param("model", "rf")
    with keel.start_run(experiment="other", run_name="c"):
        keel.log_metric("auc", 0.95)
    found = keel.search_runs("credit", "metrics.auc > 0.5", order_by=["metrics.auc DESC"])
    assert found["run_name"].tolist() == ["a", "b"]
    found = keel.search_runs(["credit", "other"], "params.model = 'rf' or metrics.auc > 0.92")
    assert sorted(found["run_name"]) == ["b", "c"]
    assert keel.search_runs("credit", "metrics.auc > 0.99").empty


def test_default_experiment_and_set_experiment() -> None:
    with keel.start_run() as first:
        pass
    keel.set_experiment("chosen")
    with keel.start_run() as second:
        pass
    names = {e.id: e.name for e in keel.list_experiments()}
    assert names[first.experiment_id] == "Default"
    assert names[second.experiment_id] == "chosen"
    assert first.name.startswith("run-")


# nesting and ending --------------------------------------------------------------------


def test_nested_start_run_makes_a_child_in_the_parents_experiment() -> None:
    with keel.start_run(experiment="grid", run_name="parent") as parent:
        assert keel.active_run() is parent
        with keel.start_run(run_name="child") as child:
            assert keel.active_run() is child
            keel.log_metric("auc", 0.7)
        assert keel.active_run() is parent
    assert keel.active_run() is None
    stored = keel.get_run(child.id)
    assert stored.parent_id == parent.id
    assert stored.experiment_id == parent.experiment_id
    assert keel.get_run(parent.id).parent_id is None
    children = keel.search_runs("grid", f"parent_id = '{parent.id}'")
    assert children["run_id"].tolist() == [child.id]
    assert keel.get_run(child.id).metrics == {"auc": 0.7}
    assert keel.get_run(parent.id).metrics == {}


def test_non_nested_start_run_while_a_run_is_active_is_refused() -> None:
    with keel.start_run(experiment="e") as outer:
        with pytest.raises(InvalidArgument, match="end_run"):
            keel.start_run(experiment="e", nested=False)
        assert keel.active_run() is outer
    assert len(keel.search_runs("e")) == 1


def test_exception_inside_with_marks_the_run_failed_and_propagates() -> None:
    run = keel.start_run(experiment="e")
    keel.log_metric("loss", 0.5, step=3)
    with pytest.raises(ValueError, match="boom"), run:
        raise ValueError("boom")
    stored = keel.get_run(run.id)
    assert stored.status == keel.RunStatus.FAILED
    assert stored.end_time is not None
    assert keel.active_run() is None
    assert keel.get_metric_history(run.id, "loss").steps.tolist() == [3]


def test_keyboard_interrupt_marks_the_run_killed() -> None:
    with pytest.raises(KeyboardInterrupt), keel.start_run(experiment="e") as run:
        raise KeyboardInterrupt
    assert keel.get_run(run.id).status == keel.RunStatus.KILLED
    assert keel.active_run() is None


def test_exception_in_a_child_fails_only_the_child() -> None:
    with keel.start_run(experiment="e") as parent:
        with pytest.raises(RuntimeError), keel.start_run() as child:
            raise RuntimeError("child broke")
        keel.log_metric("after", 1.0)
    assert keel.get_run(child.id).status == keel.RunStatus.FAILED
    assert keel.get_run(parent.id).status == keel.RunStatus.FINISHED
    assert keel.get_run(parent.id).metrics == {"after": 1.0}


def test_end_run_ends_the_innermost_run() -> None:
    parent = keel.start_run(experiment="e")
    child = keel.start_run()
    keel.end_run()
    assert keel.get_run(child.id).status == keel.RunStatus.FINISHED
    assert keel.get_run(parent.id).status == keel.RunStatus.RUNNING
    assert keel.active_run() is parent
    keel.end_run("KILLED")
    assert keel.get_run(parent.id).status == keel.RunStatus.KILLED
    assert keel.active_run() is None
    keel.end_run()  # nothing active: a no-op
    assert keel.get_run(parent.id).status == keel.RunStatus.KILLED


def test_ending_a_parent_ends_its_open_children() -> None:
    with keel.start_run(experiment="e") as parent:
        child = keel.start_run()
        grandchild = keel.start_run()
    for run in (parent, child, grandchild):
        assert keel.get_run(run.id).status == keel.RunStatus.FINISHED
    assert keel.active_run() is None


def test_end_run_with_an_unknown_status_is_an_invalid_argument() -> None:
    run = keel.start_run(experiment="e")
    with pytest.raises(InvalidArgument):
        keel.end_run("bogus")
    assert keel.active_run() is run
    assert keel.get_run(run.id).status == keel.RunStatus.RUNNING


def test_end_run_as_running_is_refused_and_the_run_stays_active() -> None:
    run = keel.start_run(experiment="e")
    with pytest.raises(InvalidArgument, match="RUNNING"):
        keel.end_run("RUNNING")
    assert keel.active_run() is run
    keel.end_run()
    assert keel.get_run(run.id).status == keel.RunStatus.FINISHED


# logging without a run -------------------------------------------------------------------


NO_RUN_CALLS: dict[str, Callable[[Path], Any]] = {
    "log_metric": lambda _: keel.log_metric("loss", 1.0),
    "log_metrics": lambda _: keel.log_metrics({"loss": 1.0}),
    "log_param": lambda _: keel.log_param("C", 1),
    "log_params": lambda _: keel.log_params({"C": 1}),
    "set_tag": lambda _: keel.set_tag("t", "v"),
    "set_tags": lambda _: keel.set_tags({"t": "v"}),
    "log_text": lambda _: keel.log_text("x", "notes.txt"),
    "log_dict": lambda _: keel.log_dict({"a": 1}, "a.json"),
    "log_artifact": lambda p: keel.log_artifact(p),
    "list_artifacts": lambda _: keel.list_artifacts(),
}


@pytest.mark.parametrize("call", list(NO_RUN_CALLS))
def test_logging_with_no_active_run_names_start_run(call: str, tmp_path: Path) -> None:
    path = tmp_path / "file.txt"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="start_run"):
        NO_RUN_CALLS[call](path)
    assert keel.list_experiments() == []


# values -----------------------------------------------------------------------------------


def test_nan_and_infinities_round_trip() -> None:
    special = {"nan": math.nan, "pinf": math.inf, "ninf": -math.inf}
    with keel.start_run(experiment="e") as run:
        for key, value in special.items():
            keel.log_metric(key, value, step=0)
        keel.log_metrics({f"{key}2": value for key, value in special.items()}, step=1)
    for key in ("nan", "nan2"):
        assert math.isnan(keel.get_metric_history(run.id, key).values[0])
        assert math.isnan(keel.get_run(run.id).metrics[key])
    for key in ("pinf", "pinf2"):
        assert keel.get_metric_history(run.id, key).values.tolist() == [math.inf]
    for key in ("ninf", "ninf2"):
        assert keel.get_metric_history(run.id, key).values.tolist() == [-math.inf]
    frame = keel.search_runs("e")
    assert math.isnan(frame["metrics.nan"][0])
    assert frame["metrics.pinf"][0] == math.inf
    assert frame["metrics.ninf"][0] == -math.inf
    assert keel.search_runs("e", "metrics.pinf > 1e308")["run_id"].tolist() == [run.id]
    assert keel.search_runs("e", "metrics.ninf < -1e308")["run_id"].tolist() == [run.id]
    assert keel.search_runs("e", "metrics.pinf = inf")["run_id"].tolist() == [run.id]


def test_numpy_values_and_steps_are_accepted() -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_metric("acc", np.float32(0.5), step=np.int64(2))
        keel.log_metrics({"n": np.int64(7)}, step=np.int32(1))
    assert keel.get_metric_history(run.id, "acc").steps.tolist() == [2]
    assert keel.get_metric_history(run.id, "acc").values.tolist() == [0.5]
    assert keel.get_run(run.id).metrics["n"] == 7.0


def test_params_and_tags_are_stored_as_text() -> None:
    with keel.start_run(experiment="e", tags={"team": "risk"}) as run:
        keel.log_params({"C": 0.1, "layers": [64, 32], "none": None})
        keel.set_tag("stage", 2)
        keel.set_tags({"stage": "final"})
    stored = keel.get_run(run.id)
    assert stored.params == {"C": "0.1", "layers": "[64, 32]", "none": "None"}
    assert stored.tags == {"team": "risk", "stage": "final"}


def test_conflicting_param_leaves_the_store_unchanged() -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_params({"C": 0.1})
        keel.log_params({"C": 0.1})  # the same value again is fine
        with pytest.raises(Conflict, match="immutable"):
            keel.log_params({"penalty": "l1", "C": 0.2})
        with pytest.raises(Conflict):
            keel.log_param("C", "0.2")
    assert keel.get_run(run.id).params == {"C": "0.1"}


def test_history_is_sorted_by_step_then_time_across_flushes() -> None:
    logged = [(5, 50.0, 0.5), (1, 10.0, 0.1), (3, 30.0, 0.3), (1, 5.0, 0.05), (0, 60.0, 0.0)]
    with keel.start_run(experiment="e") as run:
        for step, stamp, value in logged[:3]:
            keel.log_metric("loss", value, step=step, timestamp=stamp)
        keel.flush()  # a second chunk for the same metric
        for step, stamp, value in logged[3:]:
            keel.log_metric("loss", value, step=step, timestamp=stamp)
    history = keel.get_metric_history(run.id, "loss")
    expected = sorted(logged)
    assert history.steps.tolist() == [s for s, _, _ in expected]
    assert history.timestamps.tolist() == [t for _, t, _ in expected]
    assert history.values.tolist() == [v for _, _, v in expected]
    assert [p.step for p in history] == [s for s, _, _ in expected]
    # the run's latest value is the one with the highest step, not the last logged
    assert keel.get_run(run.id).metrics["loss"] == 0.5
    frame = history.to_pandas()
    assert frame["step"].tolist() == [s for s, _, _ in expected]


def test_history_of_a_metric_never_logged_is_not_found() -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_metric("loss", 1.0)
    with pytest.raises(NotFound, match="no metric 'acc'"):
        keel.get_metric_history(run.id, "acc")


# bad input leaves the store unchanged ---------------------------------------------------


def _state() -> tuple[Any, ...]:
    """Everything a failed call could have changed, as comparable values."""
    tracking = get_context().tracking
    tracking.flush()
    experiments = sorted((e.name, e.run_count) for e in keel.list_experiments())
    runs: list[Run] = tracking.search_runs()
    artifacts = {r.id: tracking.list_artifacts(r.id) for r in runs}
    histories = {
        (r.id, key): keel.get_metric_history(r.id, key).values.tolist()
        for r in runs
        for key in r.metrics
    }
    with _db(get_context().settings.home) as conn:
        counts = tuple(
            conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
            for table in ("experiments", "runs", "params", "tags", "metric_chunks", "artifacts")
        )
    conn.close()
    return experiments, runs, artifacts, histories, counts


@pytest.fixture
def populated(tmp_path: Path) -> Iterator[keel.ActiveRun]:
    with keel.start_run(experiment="e", run_name="base", tags={"t": "v"}) as run:
        keel.log_params({"C": "0.1"})
        keel.log_metric("loss", 0.5, step=0)
        keel.log_text("hello", "notes.txt")
        yield run


def _circular() -> dict[str, Any]:
    data: dict[str, Any] = {}
    data["self"] = data
    return data


BAD_CALLS: dict[str, Callable[[Path], Any]] = {
    "truncated filter": lambda _: keel.search_runs("e", "metrics.loss <"),
    "unknown attribute": lambda _: keel.search_runs("e", "colour = 'red'"),
    "unknown prefixed attribute": lambda _: keel.search_runs("e", "attributes.colour = 'x'"),
    "unbalanced parenthesis": lambda _: keel.search_runs("e", "(metrics.loss < 1"),
    "bad order by": lambda _: keel.search_runs("e", None, ["metrics.loss SIDEWAYS"]),
    "unknown experiment": lambda _: keel.search_runs("nope"),
    "empty run name": lambda _: keel.start_run(run_name=""),
    "1 MB run name": lambda _: keel.start_run(run_name="r" * 1_000_000),
    "control chars in run name": lambda _: keel.start_run(run_name="a\x1b[2Jb"),
    "empty run name in a new experiment": lambda _: keel.start_run("brand-new", run_name=""),
    "bad tag in a new experiment": lambda _: keel.start_run("brand-new", tags={"a b!": 1}),
    "1 MB experiment name": lambda _: keel.set_experiment("x" * 1_000_000),
    "artifact ../x": lambda _: keel.log_text("x", "../x"),
    "artifact /etc/passwd": lambda _: keel.log_text("x", "/etc/passwd"),
    "artifact %2e%2e/x": lambda _: keel.log_text("x", "%2e%2e/x"),
    "artifact a/../../b": lambda _: keel.log_text("x", "a/../../b"),
    "artifact file ../x": lambda p: keel.log_artifact(p, "../x"),
    "artifact missing file": lambda p: keel.log_artifact(p.parent / "missing.bin"),
    "artifact directory": lambda p: keel.log_artifact(p.parent),
    "log_dict circular": lambda _: keel.log_dict(_circular(), "d.json"),
    "unknown run id": lambda _: keel.get_run(UNKNOWN_RUN),
    "malformed run id": lambda _: keel.get_run("../../etc"),
    "history of unknown run": lambda _: keel.get_metric_history(UNKNOWN_RUN, "loss"),
    "artifacts of unknown run": lambda _: keel.list_artifacts(UNKNOWN_RUN),
    "step -1": lambda _: keel.log_metric("loss", 1.0, step=-1),
    "step 1.5": lambda _: keel.log_metric("loss", 1.0, step=1.5),  # type: ignore[arg-type]
    "step '3'": lambda _: keel.log_metric("loss", 1.0, step="3"),  # type: ignore[arg-type]
    "step 2**63": lambda _: keel.log_metric("loss", 1.0, step=2**63),
    "step True": lambda _: keel.log_metric("loss", 1.0, step=True),
    "log_metrics step -1": lambda _: keel.log_metrics({"loss": 1.0}, step=-1),
    "value '1.0'": lambda _: keel.log_metric("loss", "1.0"),  # type: ignore[arg-type]
    "value None": lambda _: keel.log_metric("loss", None),  # type: ignore[arg-type]
    "value True": lambda _: keel.log_metric("loss", True),
    "timestamp 'soon'": lambda _: keel.log_metric("loss", 1.0, timestamp="soon"),  # type: ignore[arg-type]
    "bad metric key": lambda _: keel.log_metric("bad key!", 1.0),
    "one bad value in log_metrics": lambda _: keel.log_metrics({"ok": 1.0, "bad": "x"}),
    "param value too long": lambda _: keel.log_params({"ok": 1, "big": "x" * 6001}),
    "param key with comma": lambda _: keel.log_param("a,b", 1),
    "tag value with NUL": lambda _: keel.set_tags({"ok": "1", "t": "a\x00"}),
}


@pytest.mark.parametrize("call", list(BAD_CALLS))
def test_bad_input_raises_a_keel_error_and_changes_nothing(
    call: str, populated: keel.ActiveRun, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights")
    before = _state()
    with pytest.raises(KeelError):
        BAD_CALLS[call](path)
    assert keel.active_run() is populated
    assert _state() == before


@pytest.mark.parametrize(
    ("text", "position"),
    [("metrics.loss <", 14), ("metrics.loss < 1 andd x", 17), ("colour = 'red'", 0)],
)
def test_malformed_filter_reports_its_position(text: str, position: int) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        keel.search_runs(filter=text)
    assert caught.value.position == position
    assert f"at position {position}" in caught.value.message


def test_unknown_run_names_the_listing_command() -> None:
    with pytest.raises(NotFound, match="keel runs list"):
        keel.get_run(UNKNOWN_RUN)


# artifacts --------------------------------------------------------------------------------


def test_log_artifact_and_read_it_back(tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(b"\x00weights\xff" * 1000)
    with keel.start_run(experiment="e") as run:
        default_name = keel.log_artifact(source)
        named = keel.log_artifact(source, "models/best.bin")
        keel.log_dict({"depth": 3, "names": ["a"]}, "config.yaml")
    assert default_name.name == "model.bin"
    assert default_name.size == source.stat().st_size
    assert named.digest == default_name.digest
    assert [a.name for a in keel.list_artifacts(run.id)] == [
        "config.yaml",
        "model.bin",
        "models/best.bin",
    ]
    tracking = get_context().tracking
    assert tracking.read_artifact(run.id, "models/best.bin") == source.read_bytes()
    assert yaml.safe_load(tracking.read_artifact(run.id, "config.yaml")) == {
        "depth": 3,
        "names": ["a"],
    }
    with pytest.raises(NotFound, match="no artifact"):
        tracking.read_artifact(run.id, "missing.bin")


def test_relogging_an_artifact_name_replaces_its_content() -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_text("first", "notes.txt")
        keel.log_text("second", "notes.txt")
    assert get_context().tracking.read_artifact(run.id, "notes.txt") == b"second"
    assert len(keel.list_artifacts(run.id)) == 1


def test_download_artifact_refuses_to_overwrite(tmp_path: Path) -> None:
    with keel.start_run(experiment="e") as run:
        keel.log_text("stored content", "notes.txt")
    tracking = get_context().tracking
    dest = tmp_path / "out" / "notes.txt"
    assert tracking.download_artifact(run.id, "notes.txt", dest) == dest
    assert dest.read_text(encoding="utf-8") == "stored content"

    dest.write_text("local edits", encoding="utf-8")
    with pytest.raises(InvalidArgument, match="overwrite=True"):
        tracking.download_artifact(run.id, "notes.txt", dest)
    assert dest.read_text(encoding="utf-8") == "local edits"

    tracking.download_artifact(run.id, "notes.txt", dest, overwrite=True)
    assert dest.read_text(encoding="utf-8") == "stored content"


# provenance -------------------------------------------------------------------------------


def test_source_records_command_user_host_and_pid() -> None:
    with keel.start_run(experiment="e") as run:
        pass
    source = keel.get_run(run.id).source
    assert source["command"] == [sys.executable, *sys.argv]
    assert source["user"] == getpass.getuser()
    assert source["host"] == platform.node()
    assert source["pid"] == os.getpid()


def _git(repo: Path, *args: str) -> str:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(repo.parent),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", *args], cwd=repo, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_CEILING_DIRECTORIES"):
        monkeypatch.delenv(name, raising=False)
    repo = tmp_path / "project"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "train.py").write_text("print('v1')\n", encoding="utf-8")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "first")
    monkeypatch.chdir(repo)
    return repo


def _git_of_new_run() -> dict[str, Any]:
    with keel.start_run(experiment="git") as run:
        pass
    git = keel.get_run(run.id).source["git"]
    assert isinstance(git, dict)
    return git


def test_git_state_of_a_clean_then_dirty_checkout(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_environment, "GIT_REFRESH_SECONDS", 0.0)
    head = _git(git_repo, "rev-parse", "HEAD")

    clean = _git_of_new_run()
    assert clean == {
        "repository": str(git_repo),
        "commit": head,
        "branch": "main",
        "dirty": False,
        "diff_digest": None,
    }

    (git_repo / "train.py").write_text("print('v2')\n", encoding="utf-8")
    dirty = _git_of_new_run()
    assert dirty["commit"] == head
    assert dirty["dirty"] is True
    assert isinstance(dirty["diff_digest"], str)
    assert len(dirty["diff_digest"]) == 64

    (git_repo / "train.py").write_text("print('v3')\n", encoding="utf-8")
    dirtier = _git_of_new_run()
    assert dirtier["dirty"] is True
    assert dirtier["diff_digest"] != dirty["diff_digest"]

    (git_repo / "train.py").write_text("print('v1')\n", encoding="utf-8")
    assert _git_of_new_run() == clean


def test_untracked_files_make_the_checkout_dirty(
    git_repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_environment, "GIT_REFRESH_SECONDS", 0.0)
    assert _git_of_new_run()["dirty"] is False
    (git_repo / "scratch.py").write_text("x = 1\n", encoding="utf-8")
    assert _git_of_new_run()["dirty"] is True


def test_git_state_is_reread_when_the_index_or_head_changes(git_repo: Path) -> None:
    """With the default refresh window, a change git records is still seen at once."""
    first = _git_of_new_run()
    (git_repo / "train.py").write_text("print('v2')\n", encoding="utf-8")
    _git(git_repo, "add", "train.py")  # the index changes
    staged = _git_of_new_run()
    assert staged["dirty"] is True
    assert staged["commit"] == first["commit"]
    _git(git_repo, "commit", "-q", "-m", "second")  # HEAD moves
    committed = _git_of_new_run()
    assert committed["commit"] == _git(git_repo, "rev-parse", "HEAD")
    assert committed["commit"] != first["commit"]
    assert committed["dirty"] is False


def test_no_git_outside_a_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    with keel.start_run(experiment="e") as run:
        pass
    assert "git" not in keel.get_run(run.id).source


def test_environment_is_stored_once_and_readable(home: Path) -> None:
    with keel.start_run(experiment="e") as first:
        pass
    with keel.start_run(experiment="e") as second:
        pass
    runs = [keel.get_run(first.id), keel.get_run(second.id)]
    digest = runs[0].environment_digest
    assert digest is not None
    assert runs[1].environment_digest == digest
    with _db(home) as conn:
        stored = conn.execute("SELECT digest FROM environments").fetchall()
    conn.close()
    assert stored == [(digest,)]
    environment = get_context().tracking.environment_of(runs[0])
    assert environment["python"] == platform.python_version()
    packages = environment["packages"]
    assert packages == sorted(packages)
    assert f"keel-mlops=={keel.__version__}" in packages


def test_capture_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_CAPTURE_ENVIRONMENT", "false")
    reset_context()
    with keel.start_run(experiment="e") as run:
        pass
    stored = keel.get_run(run.id)
    assert stored.source == {}
    assert stored.environment_digest is None
    assert get_context().tracking.environment_of(stored) == {}
