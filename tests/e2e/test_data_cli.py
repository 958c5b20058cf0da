"""``keel data`` end to end: the installed CLI in a subprocess, KEEL_HOME in tmp_path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KEEL = str(Path(sys.executable).with_name("keel"))


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(tmp_path / "home"), KEEL_CAPTURE_ENVIRONMENT="false", COLUMNS="200")

    def keel(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [KEEL, "data", *args], env=env, capture_output=True, text=True, cwd=tmp_path
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done

    return keel


def test_data_cli_round_trip(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "b.txt").write_text("hello")
    added = json.loads(run("add", str(data), "--name", "credit", "-m", "first", "--json").stdout)
    assert added["ref"] == "credit@v1"
    assert added["created"]
    assert added["files"] == 2
    again = json.loads(run("add", str(data), "--name", "credit", "--json").stdout)
    assert not again["created"]
    assert again["ref"] == "credit@v1"
    (data / "sub" / "b.txt").write_text("hello, world")
    assert "added credit@v2" in run("add", str(data), "--name", "credit").stdout
    listed = json.loads(run("list", "--json").stdout)
    assert listed == [{"name": "credit", "versions": 2, "latest": 2}]
    assert "credit@v2" in run("show", "credit").stdout
    shown = json.loads(run("show", "credit@v1", "--json").stdout)
    assert [f["path"] for f in shown["files_list"]] == ["a.csv", "sub/b.txt"]
    diff = json.loads(run("diff", "credit@v1", "credit@v2", "--json").stdout)
    assert [m["path"] for m in diff["modified"]] == ["sub/b.txt"]
    assert diff["unchanged"] == 1
    assert "credit@prod -> credit@v1" in run("tag", "credit@v1", "prod").stdout
    out = tmp_path / "out"
    run("get", "credit@prod", "-o", str(out))
    assert (out / "sub" / "b.txt").read_text() == "hello"
    refused = run("get", "credit@v2", "-o", str(out), check=False)
    assert refused.returncode == 1
    assert "--force" in refused.stderr
    assert (out / "sub" / "b.txt").read_text() == "hello"
    run("get", "credit@v2", "-o", str(out), "--force")
    assert (out / "sub" / "b.txt").read_text() == "hello, world"
    lineage = json.loads(run("lineage", "credit@v1", "--json").stdout)
    assert lineage["version"]["ref"] == "credit@v1"
    assert lineage["runs"] == []
    assert "Lineage of credit@v1" in run("lineage", "credit@v1").stdout


def test_data_cli_errors(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = run("add", str(tmp_path / "nope"), "--name", "x", check=False)
    assert missing.returncode == 1
    assert "no file or directory" in missing.stderr
    bad = run("add", str(tmp_path), "--name", "../x", "--json", check=False)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["error"]["code"] == "INVALID_ARGUMENT"
    unknown = run("show", "nothing@v3", check=False)
    assert unknown.returncode == 1
    assert "keel data list" in unknown.stderr
    assert "Traceback" not in unknown.stderr
