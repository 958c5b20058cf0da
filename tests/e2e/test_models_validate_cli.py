"""``keel models validate`` driven through Typer: exit status and every reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from keel.cli._models_validate import register
from keel.demo._world import TARGET, generate_credit_data
from keel.evaluation import evaluate


@pytest.fixture
def app() -> typer.Typer:
    models = typer.Typer()

    @models.callback()
    def _models() -> None:
        """keel models"""

    register(models)
    return models


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Candidate, champion (same holdout) and a report on other data, as JSON files."""
    data = generate_credit_data(4000, seed=3)
    columns = ["income", "debt_ratio", "late_payments", "age", "gender", TARGET]
    train = data.iloc[:2000][columns]
    holdout = data.iloc[2000:][columns].reset_index(drop=True)
    features = ["income", "debt_ratio", "late_payments", "age"]

    def fit(names: list[str]) -> LogisticRegression:
        return LogisticRegression(max_iter=1000).fit(train[names], train[TARGET])

    class Subset:
        """A model that reads only some columns (duck-typed: predict and predict_proba)."""

        def __init__(self, names: list[str]) -> None:
            self.names = names
            self.model = fit(names)
            self.classes_ = self.model.classes_

        def predict(self, x: object) -> object:
            return self.model.predict(x[self.names])  # type: ignore[index]

        def predict_proba(self, x: object) -> object:
            return self.model.predict_proba(x[self.names])  # type: ignore[index]

    out = tmp_path_factory.mktemp("reports")
    options = {"slices": ["gender"], "bootstrap": 20, "permutation_repeats": 0}
    candidate = evaluate(Subset(features), holdout, TARGET, **options)  # type: ignore[arg-type]
    champion = evaluate(Subset(["late_payments"]), holdout, TARGET, **options)  # type: ignore[arg-type]
    other = evaluate(Subset(features), data.iloc[:2000][columns], TARGET, **options)  # type: ignore[arg-type]
    paths = out / "candidate.json", out / "champion.json", out / "other.json"
    for report, path in zip((candidate, champion, other), paths, strict=True):
        path.write_text(report.to_json(), encoding="utf-8")
    return paths


def _gate(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gate.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_passing_gate_exits_zero_and_prints_every_reason(
    app: typer.Typer, reports: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    candidate, champion, _ = reports
    gate = _gate(
        tmp_path,
        "metric: auc\nrules:\n  - auc >= 0.6\n  - min(recall by gender) >= 0.3\n"
        "beat_baseline: true\nchampion_tolerance: 0.01\n",
    )
    args = ["validate", "--gate", str(gate), "--report", str(candidate)]
    result = CliRunner().invoke(app, [*args, "--champion-report", str(champion)])
    assert result.exit_code == 0, result.output
    assert "passed" in result.output
    assert "min(recall by gender)" in result.output
    assert "champion" in result.output


def test_failing_gate_exits_one_with_json_reasons(
    app: typer.Typer, reports: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    candidate, _, _ = reports
    gate = _gate(tmp_path, "rules: [auc >= 0.99, accuracy >= 0.1]\n")
    args = ["validate", "-g", str(gate), "-r", str(candidate), "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    body = json.loads(result.output)
    assert body["passed"] is False
    assert [r["status"] for r in body["reasons"]] == ["failed", "passed"]
    assert body["reasons"][0]["threshold"] == 0.99


@pytest.mark.parametrize(
    ("gate_text", "use_other", "message"),
    [
        ("rules: [aucc >= 0.5]\n", False, "unknown metric 'aucc'"),
        ("rules: ['min(recall by region) >= 0.5']\n", False, "no slice 'region'"),
        ("champion_tolerance: 0.01\n", True, "different data"),
    ],
)
def test_bad_gate_or_champion_is_a_clear_error(
    app: typer.Typer,
    reports: tuple[Path, Path, Path],
    tmp_path: Path,
    gate_text: str,
    use_other: bool,
    message: str,
) -> None:
    candidate, _, other = reports
    args = ["validate", "--gate", str(_gate(tmp_path, gate_text)), "--report", str(candidate)]
    if use_other:
        args += ["--champion-report", str(other)]
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["code"] == "INVALID_ARGUMENT"
    assert message in error["message"]


def test_unreadable_report_is_a_clear_error(app: typer.Typer, tmp_path: Path) -> None:
    gate = _gate(tmp_path, "rules: [auc >= 0.5]\n")
    missing = tmp_path / "missing.json"
    result = CliRunner().invoke(app, ["validate", "-g", str(gate), "-r", str(missing), "--json"])
    assert result.exit_code == 1
    assert "cannot read evaluation report" in json.loads(result.output)["error"]["message"]
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"hello": 1}', encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", "-g", str(gate), "-r", str(garbage), "--json"])
    assert result.exit_code == 1
    assert "not a Keel evaluation report" in json.loads(result.output)["error"]["message"]
