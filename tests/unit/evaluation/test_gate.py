"""Gate rules parse strictly, and a gate gives every reason for its verdict."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keel.core._models import GATE_ARTIFACT, GATE_TAG
from keel.errors import InvalidArgument
from keel.evaluation import EvaluationReport, Gate
from keel.evaluation._rules import Rule, parse_rule
from keel.tracking import TrackingService

GATE = """
metric: auc            # primary metric
rules:
  - auc >= 0.70
  - min(recall by gender) >= 0.50
  - demographic_parity_difference <= 0.30
  - log_loss <= 0.9
beat_baseline: true
champion_tolerance: 0.01
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("auc >= 0.8", Rule("auc >= 0.8", "auc", ">=", 0.8)),
        ("roc_auc>.8", Rule("roc_auc>.8", "auc", ">", 0.8)),
        ("log_loss < 6e-1", Rule("log_loss < 6e-1", "log_loss", "<", 0.6)),
        ("recall >= 70%", Rule("recall >= 70%", "recall", ">=", 0.7)),
        (
            "min(recall by gender) >= 0.7",
            Rule("min(recall by gender) >= 0.7", "recall", ">=", 0.7, "min", "gender"),
        ),
        (
            "MAX( brier by gender & `age band` ) <= 0.3",
            Rule(
                "MAX( brier by gender & `age band` ) <= 0.3",
                "brier",
                "<=",
                0.3,
                "max",
                "gender & age band",
            ),
        ),
    ],
)
def test_rules_parse(text: str, expected: Rule) -> None:
    assert parse_rule(text, 1) == expected


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("acc >= 0.8", 0, "unknown metric 'acc'; use one of accuracy, precision"),
        ("auc == 0.8", 4, "unsupported operator '=='"),
        ("auc >= high", 7, "expected a number"),
        ("auc 0.8", 4, "expected a comparison"),
        ("min(recall gender) >= 0.7", 11, "expected 'by'"),
        ("min(recall by gender >= 0.7", 21, "expected ')'"),
        ("min(demographic_parity_difference by gender) < 1", 4, "not per slice"),
        ("auc >= 0.8 and f1 > 0.5", 11, "one comparison per rule"),
        ("auc >= 0.8;", 10, "unexpected character ';'"),
        ("min(recall by `gender) >= 0.7", 14, "unterminated"),
        ("", 0, "expected a metric name"),
    ],
)
def test_malformed_rules_name_the_rule_position_and_fix(
    text: str, position: int, fragment: str
) -> None:
    with pytest.raises(InvalidArgument, match="gate rule 3") as caught:
        parse_rule(text, 3)
    assert fragment in caught.value.message
    assert caught.value.details["position"] == position


@given(st.text(max_size=60))
def test_the_parser_never_fails_any_other_way(text: str) -> None:
    try:
        rule = parse_rule(text, 1)
    except InvalidArgument:
        return
    assert rule.op in (">=", ">", "<=", "<")


def test_gate_from_yaml_file_and_text(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(GATE, encoding="utf-8")
    from_file = Gate.from_yaml(path)
    assert from_file == Gate.from_yaml(str(path)) == Gate.from_yaml(GATE)
    assert from_file.metric == "auc"
    assert from_file.beat_baseline
    assert from_file.champion_tolerance == 0.01
    assert len(from_file.rules) == 4


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("metric: auc\nrulez: [auc > 0.5]", "unknown key"),
        ("rules: auc > 0.5", "rules must be a list"),
        ("rules: [1]", "gate rule 1 must be a string"),
        ("rules: [auc > 0.5, 'bogus >= 1']", "gate rule 2 'bogus >= 1': unknown metric"),
        ("metric: accuracy_score\nrules: [auc > 0.5]", "unknown primary metric"),
        ("beat_baseline: yes please", "beat_baseline must be true or false"),
        ("champion_tolerance: -1", "champion_tolerance must be a non-negative"),
        ("metric: auc", "checks nothing"),
        ("rules: [auc > 0.5", "not valid YAML at line"),
        ("just text", "must be a YAML mapping"),
    ],
)
def test_bad_gate_files_are_clear_errors(text: str, match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        Gate.from_yaml(text)


def test_a_passing_gate_gives_every_reason(credit_report: EvaluationReport) -> None:
    result = Gate.from_yaml(GATE).check(credit_report)
    assert result.passed, result.to_dict()
    kinds = [r.kind for r in result.reasons]
    assert kinds == ["rule"] * 4 + ["baseline", "champion"]
    assert result.reasons[-1].status == "skipped"  # no champion report yet
    slice_reason = result.reasons[1]
    assert "(at " in slice_reason.message
    assert "n=" in slice_reason.message
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["verdict"] == "passed"


def test_a_failing_gate_fails_each_broken_rule(credit_report: EvaluationReport) -> None:
    gate = Gate.from_yaml(
        "rules: [auc >= 0.99, 'min(recall by age) >= 0.95', accuracy > 0.1]\nbeat_baseline: true"
    )
    result = gate.check(credit_report)
    assert not result.passed
    assert [r.status for r in result.reasons] == ["failed", "failed", "passed", "passed"]
    assert result.reasons[0].observed == pytest.approx(credit_report.metrics["auc"])
    assert result.reasons[0].threshold == 0.99
    assert len(result.failures) == 2


def test_unknown_slice_or_wrong_task_metric_names_the_rule(
    credit_report: EvaluationReport,
) -> None:
    with pytest.raises(InvalidArgument, match=r"gate rule 1 .*no slice 'region'.*gender, age"):
        Gate.from_yaml("rules: ['min(recall by region) >= 0.5']").check(credit_report)
    with pytest.raises(InvalidArgument, match=r"gate rule 1 'rmse <= 3'.*has no metric 'rmse'"):
        Gate.from_yaml("rules: [rmse <= 3]").check(credit_report)
    with pytest.raises(InvalidArgument, match="primary metric 'rmse'"):
        Gate.from_yaml("metric: rmse\nbeat_baseline: true").check(credit_report)


def test_baseline_missing_fails_with_the_fix(credit_report: EvaluationReport) -> None:
    report = dataclasses.replace(credit_report, baseline=None, baseline_metrics={})
    result = Gate.from_yaml("beat_baseline: true").check(report)
    assert not result.passed
    assert "baseline='dummy'" in result.reasons[0].message


def test_champion_on_the_same_holdout(credit_report: EvaluationReport) -> None:
    gate = Gate.from_yaml("metric: auc\nchampion_tolerance: 0.01")
    auc = credit_report.metrics["auc"]
    assert auc is not None
    better = _with_auc(credit_report, auc + 0.005)
    much_better = _with_auc(credit_report, auc + 0.05)
    assert gate.check(credit_report, better).passed  # within tolerance
    result = gate.check(credit_report, much_better)
    assert not result.passed
    assert result.reasons[0].kind == "champion"
    assert "tolerance 0.01" in result.reasons[0].message


def test_champion_on_other_data_is_refused(credit_report: EvaluationReport) -> None:
    other = dataclasses.replace(credit_report, data_digest="blake3:" + "0" * 64)
    with pytest.raises(InvalidArgument, match="different data"):
        Gate.from_yaml("champion_tolerance: 0").check(credit_report, other)


def test_gate_result_logs_artifact_and_tag(
    credit_report: EvaluationReport, tracking: TrackingService, run_id: str
) -> None:
    result = Gate.from_yaml("rules: [auc >= 0.99]").check(credit_report)
    result.log_to(tracking, run_id)
    assert tracking.get_run(run_id).tags[GATE_TAG] == "failed"
    stored = json.loads(tracking.read_artifact(run_id, GATE_ARTIFACT))
    assert stored["passed"] is False
    assert stored["reasons"][0]["rule"] == "auc >= 0.99"


def _with_auc(report: EvaluationReport, value: float) -> EvaluationReport:
    overall = dict(report.overall)
    overall["auc"] = dataclasses.replace(overall["auc"], value=value)
    return dataclasses.replace(report, overall=overall)
