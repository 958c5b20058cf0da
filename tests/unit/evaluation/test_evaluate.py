"""``evaluate`` on the synthetic credit world: slices, fairness, baseline, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, RidgeClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.tree import DecisionTreeClassifier

from keel.core._models import EVALUATION_ARTIFACT
from keel.demo._world import TARGET
from keel.errors import InvalidArgument
from keel.evaluation import EvaluationReport, Gate, data_digest, evaluate
from keel.tracking import TrackingService

Credit = tuple[Pipeline, pd.DataFrame]
QUICK = {"bootstrap": 30, "permutation_repeats": 0}


def test_overall_metrics_match_scikit_learn(
    credit: Credit, credit_report: EvaluationReport
) -> None:
    model, holdout = credit
    proba = model.predict_proba(holdout.drop(columns=TARGET))[:, 1]
    report = credit_report
    assert report.task == "binary"
    assert report.primary_metric == "auc"
    assert report.metrics["auc"] == pytest.approx(roc_auc_score(holdout[TARGET], proba))
    auc = report.overall["auc"]
    assert auc.low is not None
    assert auc.high is not None
    assert auc.low < auc.value < auc.high  # type: ignore[operator]
    assert report.rows == 5000
    assert report.positive_label == "1"


def test_slices_numeric_bands_and_crossed_slices(credit_report: EvaluationReport) -> None:
    report = credit_report
    assert report.slice_names == ["gender", "age", "gender & employment"]
    genders = {s.value: s.count for s in report.slices if s.slice == "gender"}
    assert set(genders) == {"F", "M"}
    assert sum(genders.values()) == 5000
    ages = [s.value for s in report.slices if s.slice == "age"]
    assert len(ages) == 4
    assert ages[0].startswith("[")
    assert ages[0].endswith(")")
    assert ages[-1].endswith("]")
    crossed = [s.value for s in report.slices if s.slice == "gender & employment"]
    assert "F & employed" in crossed
    for s in report.slices:
        assert set(s.metrics) == set(report.overall)


def test_fairness_defaults_to_the_first_slice(credit_report: EvaluationReport) -> None:
    fair = credit_report.fairness
    assert fair is not None
    assert fair.sensitive == "gender"
    rates = {g: v["selection_rate"] for g, v in fair.groups.items()}
    assert fair.demographic_parity_difference == pytest.approx(abs(rates["M"] - rates["F"]))
    assert fair.demographic_parity_ratio == pytest.approx(min(rates.values()) / max(rates.values()))
    tpr_gap = abs(fair.groups["M"]["tpr"] - fair.groups["F"]["tpr"])
    fpr_gap = abs(fair.groups["M"]["fpr"] - fair.groups["F"]["fpr"])
    assert fair.equalized_odds_difference == pytest.approx(max(tpr_gap, fpr_gap))


def test_worst_slices_importance_and_baseline(credit_report: EvaluationReport) -> None:
    report = credit_report
    worst = report.worst_slices
    assert worst
    assert all(w["count"] >= 30 for w in worst)
    scores = [w["score"] for w in worst]
    assert scores == sorted(scores)
    assert all(w["score"] < report.metrics["auc"] for w in worst)  # type: ignore[operator]
    assert report.importance[0]["feature"] in {"income", "debt_ratio", "late_payments"}
    assert report.baseline == "dummy (prior)"
    assert report.baseline_metrics["auc"] == pytest.approx(0.5)


def test_report_round_trips_through_strict_json(credit_report: EvaluationReport) -> None:
    text = credit_report.to_json()
    json.loads(text)  # allow_nan=False when written: strict JSON
    again = EvaluationReport.from_json(text)
    assert again.to_dict() == credit_report.to_dict()
    assert again.metrics == credit_report.metrics


def test_tiny_and_single_class_slices_say_why(credit: Credit) -> None:
    model, holdout = credit
    data = holdout.copy()
    data["segment"] = np.where(np.arange(len(data)) < 12, "tiny", "big")
    # a slice where every applicant was refused: AUC is undefined there
    data["cohort"] = np.where(data[TARGET] == 0, "refused", "approved")
    report = evaluate(model, data, TARGET, slices=["segment", "cohort"], **QUICK)
    tiny = next(s for s in report.slices if s.value == "tiny")
    assert tiny.count == 12
    assert tiny.metrics["accuracy"].low is None
    assert "n too small" in (tiny.metrics["accuracy"].note or "")
    refused = next(s for s in report.slices if s.value == "refused")
    assert refused.metrics["auc"].value is None
    assert "one class" in (refused.metrics["auc"].note or "")
    json.loads(report.to_json())


def test_model_without_predict_proba_reports_why(credit: Credit) -> None:
    _, holdout = credit
    features = holdout.drop(columns=TARGET).select_dtypes("number")
    model = RidgeClassifier().fit(features, holdout[TARGET])
    data = features.assign(**{TARGET: holdout[TARGET], "gender": holdout["gender"]})
    data = data[[*features.columns, TARGET, "gender"]]
    report = evaluate(model, data.drop(columns="gender"), TARGET, **QUICK)
    assert report.primary_metric == "f1"
    assert report.metrics["auc"] is None
    assert "predict_proba" in (report.overall["auc"].note or "")
    assert any("predict_proba" in note for note in report.notes)
    result = Gate.from_yaml("rules: [auc >= 0.8]").check(report)
    assert not result.passed
    assert "predict_proba" in result.reasons[0].message


def test_regression_and_multiclass(credit: Credit) -> None:
    _, holdout = credit
    features = holdout.drop(columns=TARGET).select_dtypes("number")
    income = features.pop("income")
    data = features.assign(income=income)
    regressor = LinearRegression().fit(features, income)
    report = evaluate(regressor, data, "income", slices=["late_payments"], **QUICK)
    assert report.task == "regression"
    assert report.primary_metric == "rmse"
    assert set(report.metrics) == {"mae", "rmse", "r2", "mape"}
    assert report.fairness is not None
    assert report.fairness.note
    assert report.baseline_metrics["r2"] == pytest.approx(0.0, abs=1e-9)
    assert [s.value for s in report.slices][:2] == ["0", "1"]  # few values: not banded

    classes = holdout["employment"].astype(str)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0).fit(features, classes)
    multi = features.assign(employment=classes)
    report = evaluate(tree, multi, "employment", **QUICK)
    assert report.task == "multiclass"
    assert len(report.confusion) == len(report.classes) == 5


def test_the_data_digest_ignores_row_order_but_not_values(credit: Credit) -> None:
    _, holdout = credit
    shuffled = holdout.sample(frac=1.0, random_state=1)
    assert data_digest(shuffled) == data_digest(holdout)
    changed = holdout.copy()
    changed.loc[0, "income"] += 1
    assert data_digest(changed) != data_digest(holdout)


def test_evaluation_is_deterministic_for_a_seed(credit: Credit) -> None:
    model, holdout = credit
    first = evaluate(model, holdout, TARGET, slices=["gender"], **QUICK)
    second = evaluate(model, holdout, TARGET, slices=["gender"], **QUICK)
    assert first.slices[0].metrics["auc"] == second.slices[0].metrics["auc"]
    assert first.overall == second.overall


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"target": "nope"}, "no target column 'nope'"),
        ({"slices": ["nope"]}, "slice column 'nope' is not in the data"),
        ({"sensitive": "nope"}, "slice column 'nope' is not in the data"),
        ({"slices": [3]}, "invalid slice 3"),
        ({"baseline": "median"}, "unknown baseline 'median'"),
        ({"task": "ranking"}, "unknown task 'ranking'"),
        ({"threshold": 2.0}, "threshold must be within"),
        ({"bootstrap": -1}, "bootstrap must be a non-negative integer"),
        ({"positive_label": 7}, "positive_label 7 is not a class"),
    ],
)
def test_bad_input_is_a_clear_error(credit: Credit, kwargs: dict[str, object], match: str) -> None:
    model, holdout = credit
    args: dict[str, object] = {"target": TARGET, **QUICK, **kwargs}
    with pytest.raises(InvalidArgument, match=match):
        evaluate(model, holdout, **args)  # type: ignore[arg-type]


def test_other_bad_input(credit: Credit) -> None:
    model, holdout = credit
    with pytest.raises(InvalidArgument, match="missing values"):
        evaluate(model, holdout.assign(approved=np.nan), TARGET, **QUICK)
    with pytest.raises(InvalidArgument, match="DataFrame"):
        evaluate(model, holdout.to_numpy(), TARGET)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="no predict method"):
        evaluate(object(), holdout, TARGET)
    with pytest.raises(InvalidArgument, match="needs columns the data lacks"):
        evaluate(model, holdout.drop(columns="income"), TARGET)
    with pytest.raises(InvalidArgument, match="labels the model does not know"):
        evaluate(model, holdout.assign(approved=2), TARGET, **QUICK)


def test_html_is_self_contained_and_escaped(credit: Credit, tmp_path: Path) -> None:
    model, holdout = credit
    data = holdout.copy()
    data["<b>seg$</b>"] = np.where(np.arange(len(data)) % 2, "<script>alert(1)</script>", "x$y$")
    report = evaluate(model, data, TARGET, slices=["<b>seg$</b>"], **QUICK)
    page = report.to_html(tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;b&gt;seg$&lt;/b&gt;" in page
    assert page.count("data:image/png;base64,") >= 5
    assert "http://" not in page
    assert "https://" not in page
    written = report.save_plots(tmp_path / "plots")
    names = sorted(p.name for p in written)
    assert {"roc.png", "pr.png", "calibration.png", "confusion.png"} <= set(names)
    assert "slice-1-b-seg-b.png" in names
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)


def test_log_to_records_metrics_report_html_and_plots(
    credit_report: EvaluationReport, tracking: TrackingService, run_id: str
) -> None:
    credit_report.log_to(tracking, run_id)
    tracking.flush()
    run = tracking.get_run(run_id)
    assert run.metrics["eval.auc"] == pytest.approx(credit_report.metrics["auc"])
    assert run.metrics["eval.baseline.auc"] == pytest.approx(0.5)
    assert "eval.demographic_parity_difference" in run.metrics
    names = {a.name for a in tracking.list_artifacts(run_id)}
    assert {EVALUATION_ARTIFACT, "evaluation/report.html", "evaluation/plots/roc.png"} <= names
    stored = EvaluationReport.from_json(tracking.read_artifact(run_id, EVALUATION_ARTIFACT))
    assert stored.data_digest == credit_report.data_digest
