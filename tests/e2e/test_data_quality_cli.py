"""``keel data validate`` and ``keel data schema infer`` driven through Typer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from keel.cli._data_quality import register


@pytest.fixture
def app() -> typer.Typer:
    data = typer.Typer()

    @data.callback()
    def _data() -> None:
        """keel data"""

    register(data)
    return data


@pytest.fixture
def parquet(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "train.parquet"
    pd.DataFrame(
        {"x": rng.normal(size=500), "c": rng.choice(["a", "b"], 500), "<i>name</i>": 1}
    ).to_parquet(path)
    return path


def test_infer_then_validate_passes(app: typer.Typer, parquet: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    inferred = runner.invoke(app, ["schema", "infer", str(parquet)])
    assert inferred.exit_code == 0, inferred.output
    schema = tmp_path / "schema.yaml"
    schema.write_text(inferred.stdout)
    html = tmp_path / "report.html"
    args = ["validate", str(parquet), "--schema", str(schema), "--reference", str(parquet)]
    result = runner.invoke(app, [*args, "--html", str(html)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.stdout
    assert "<i>name</i>" in result.stdout  # user text printed literally, not as markup
    assert "&lt;i&gt;name&lt;/i&gt;" in html.read_text()


def test_failure_exits_1_with_json(app: typer.Typer, parquet: Path, tmp_path: Path) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text("columns:\n  x: {type: float, max: 0.5}\nallow_extra_columns: true\n")
    result = CliRunner().invoke(app, ["validate", str(parquet), "--schema", str(schema), "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False
    assert [r["expectation"] for r in report["results"] if not r["passed"]] == ["range"]


def test_bad_input_is_a_clear_error(app: typer.Typer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.touch()
    result = CliRunner().invoke(app, ["validate", str(empty)])
    assert result.exit_code == 1
    assert "empty (0 bytes)" in result.output
    assert "Traceback" not in result.output
    bad_schema = tmp_path / "s.yaml"
    bad_schema.write_text("columns: {x: {type: number}}")
    result = CliRunner().invoke(
        app, ["validate", str(empty), "--schema", str(bad_schema), "--json"]
    )
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "INVALID_ARGUMENT"


def _keel(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env["KEEL_HOME"] = str(home)
    return subprocess.run(
        [str(Path(sys.executable).with_name("keel")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_validate_dataset_versions_by_reference(parquet: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert _keel(home, "data", "add", str(parquet), "--name", "train").returncode == 0
    shifted = tmp_path / "shifted.parquet"
    frame = pd.read_parquet(parquet)
    frame["x"] = frame["x"] + 3.0
    frame.to_parquet(shifted)
    assert _keel(home, "data", "add", str(shifted), "--name", "train").returncode == 0

    same = _keel(home, "data", "validate", "train@v1", "--reference", "train@v1", "--json")
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)["passed"] is True

    drifted = _keel(home, "data", "validate", "train@v2", "--reference", "train@v1", "--json")
    assert drifted.returncode == 1
    failed = [r for r in json.loads(drifted.stdout)["results"] if not r["passed"]]
    assert any(r.get("column") == "x" for r in failed)
    assert "Traceback" not in drifted.stderr

    missing = _keel(home, "data", "validate", "train@v9")
    assert missing.returncode == 1
    assert "train" in missing.stderr
    assert "Traceback" not in missing.stderr
