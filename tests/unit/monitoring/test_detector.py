"""DriftDetector and detect_drift: planted drift found, same data left alone, the
estimator contract, per-column overrides, slices and every kind of bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keel.core._data import DatasetVersion
from keel.data._profile import profile_file, profile_frame
from keel.demo._world import generate_credit_data
from keel.errors import InvalidArgument
from keel.monitoring import DriftDetector, DriftReport, detect_drift

Mixed = Callable[..., pd.DataFrame]
SHIFTED = ["city", "exponential", "normal"]


@pytest.mark.parametrize("rows", [1000, 10_000, 100_000])
def test_planted_shifts_are_detected_at_every_size(mixed: Mixed, rows: int) -> None:
    reference = mixed(rows, 1)
    current = mixed(rows, 2, shift=0.5, moved=0.15)
    report = detect_drift(reference, current)
    assert sorted(report.drifted_columns) == SHIFTED
    assert report.columns["normal"].mean_shift == pytest.approx(0.5, abs=0.15)


@pytest.mark.parametrize("rows", [1000, 10_000, 100_000])
def test_no_false_positives_on_the_same_distribution(mixed: Mixed, rows: int) -> None:
    report = detect_drift(mixed(rows, 3), mixed(rows, 4))
    assert report.drifted_columns == []
    assert not report.drifted
    assert all(c.status == "ok" for c in report.columns.values())


def test_the_credit_world_drifts_where_the_recession_hits() -> None:
    reference = generate_credit_data(20_000, seed=1)
    calm = detect_drift(reference, generate_credit_data(20_000, seed=2))
    assert calm.drifted_columns == []
    recession = detect_drift(reference, generate_credit_data(20_000, seed=3, drift=1.0))
    assert {"income", "employment"} <= set(recession.drifted_columns)
    assert "gender" not in recession.drifted_columns
    assert "region" not in recession.drifted_columns


def test_methods_follow_type_and_reference_size(mixed: Mixed) -> None:
    small = DriftDetector().fit(mixed(800, 1))
    assert small.methods_["normal"] == "ks"
    assert small.methods_["city"] == "chisquare"
    assert small.methods_["flag"] == "chisquare"
    assert small.methods_["code"] == "chisquare"  # four values: compared as categories
    assert small.thresholds_["normal"] == 0.05
    large = DriftDetector().fit(mixed(5000, 1))
    assert large.methods_["normal"] == "wasserstein"
    assert large.methods_["count"] == "wasserstein"
    assert large.methods_["code"] == "jensenshannon"
    assert large.methods_["city"] == "jensenshannon"
    assert large.thresholds_["city"] == 0.1
    assert DriftDetector(small_sample=10_000).fit(mixed(5000, 1)).methods_["normal"] == "ks"


def test_small_samples_get_benjamini_hochberg_adjusted_p_values(mixed: Mixed) -> None:
    report = detect_drift(mixed(600, 1), mixed(600, 2, shift=0.5))
    for column in report.columns.values():
        assert column.p_value is not None
        assert column.p_value_adjusted is not None
        assert column.p_value_adjusted >= column.p_value
        assert column.drifted == (column.p_value_adjusted < 0.05)
    raw = DriftDetector(correction=False).fit(mixed(600, 1)).score(mixed(600, 2, shift=0.5))
    assert all(c.p_value_adjusted == c.p_value for c in raw.columns.values())
    assert report.params["correction"] == "benjamini-hochberg"


def test_per_column_method_and_threshold_overrides(mixed: Mixed) -> None:
    reference, current = mixed(5000, 1), mixed(5000, 2, shift=0.5, moved=0.15)
    report = detect_drift(
        reference,
        current,
        methods={"normal": "psi", "city": "chi2", "uniform": "KS"},
        thresholds={"normal": 0.2, "exponential": 5.0, "uniform": 0.01},
    )
    normal = report.columns["normal"]
    assert (normal.method, normal.threshold, normal.drifted) == ("psi", 0.2, True)
    assert normal.statistic is not None
    assert normal.statistic > 0.2
    assert report.columns["city"].method == "chisquare"
    assert report.columns["city"].p_value is not None
    assert report.columns["uniform"].method == "ks"
    exponential = report.columns["exponential"]
    assert exponential.method == "wasserstein"
    assert not exponential.drifted  # threshold raised above the shift
    one_for_all = detect_drift(reference, current, columns=["normal", "city"], methods="psi")
    assert [c.method for c in one_for_all.columns.values()] == ["psi", "psi"]
    js = detect_drift(reference, current, methods={"lognormal": "js"}, thresholds=0.5)
    assert js.columns["lognormal"].method == "jensenshannon"
    assert {c.threshold for c in js.columns.values()} == {0.5}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"methods": {"normal": "energy"}}, "unknown drift method 'energy'"),
        ({"methods": {"city": "ks"}}, "ks needs a numeric column"),
        ({"methods": {"nope": "psi"}}, "names column 'nope'"),
        ({"thresholds": {"normal": "high"}}, "must be a number"),
        ({"thresholds": {"normal": -1.0}}, "must be positive"),
        ({"thresholds": 2.0, "small_sample": 10**9}, "significance level"),
        ({"columns": ["normal", "nope"]}, "column 'nope' is not in the reference"),
        ({"columns": []}, "checks nothing"),
        ({"bins": 1}, "bins must be an integer"),
        ({"dataset_share": 0}, "dataset_share"),
        ({"chunk_rows": 0}, "chunk_rows"),
        ({"small_sample": -1}, "small_sample"),
    ],
)
def test_bad_parameters_say_what_to_fix(
    mixed: Mixed, kwargs: dict[str, object], message: str
) -> None:
    detector = DriftDetector(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=message):
        detector.fit(mixed(2000, 1))


def test_estimator_contract(mixed: Mixed) -> None:
    params = {"columns": ["normal", "city"], "methods": {"normal": "psi"}, "bins": 50}
    detector = DriftDetector(**params)  # type: ignore[arg-type]
    assert detector.get_params()["methods"] is params["methods"]  # stored, not copied
    assert not [a for a in vars(detector) if a.endswith("_")]  # nothing learned yet
    with pytest.raises(InvalidArgument, match="not fitted"):
        detector.score(mixed(100, 2))
    assert detector.fit(mixed(3000, 1)) is detector
    learned = sorted(a for a in vars(detector) if a.endswith("_"))
    assert learned == [
        "bin_sums_",
        "columns_",
        "methods_",
        "reference_",
        "slice_detectors_",
        "thresholds_",
    ]
    assert detector.columns_ == ["normal", "city"]
    assert detector.reference_.columns["normal"].edges is not None
    assert detector.reference_.columns["normal"].edges.size <= 51
    first = detector.score(mixed(3000, 2))
    second = detector.score(mixed(3000, 3, shift=1.0))
    assert first.drifted_columns == []
    assert second.drifted_columns == ["normal"]
    assert detector.set_params(bins=20) is detector
    assert detector.bins == 20
    with pytest.raises(InvalidArgument, match="no parameter 'bin'"):
        detector.set_params(bin=3)
    assert repr(DriftDetector(bins=20)) == "DriftDetector(bins=20)"


def test_detect_drift_is_fit_then_score(mixed: Mixed) -> None:
    reference, current = mixed(4000, 1), mixed(4000, 2, shift=0.3)
    direct = detect_drift(reference, current, columns=["normal", "uniform"])
    fitted = DriftDetector(["normal", "uniform"]).fit(reference).score(current)
    assert direct.to_dict()["columns"] == fitted.to_dict()["columns"]


def test_a_stored_profile_gives_the_same_verdicts_as_the_frame(
    mixed: Mixed, tmp_path: Path
) -> None:
    reference, current = mixed(20_000, 1), mixed(20_000, 2, shift=0.5, moved=0.15)
    path = tmp_path / "reference.parquet"
    reference.to_parquet(path)
    stored = profile_file(path)
    assert stored is not None
    from_frame = detect_drift(reference, current)
    for ref in (stored, stored["profile"], profile_frame(reference)):
        report = detect_drift(ref, current)
        assert sorted(report.drifted_columns) == SHIFTED
        for name, column in report.columns.items():
            expected = from_frame.columns[name]
            assert column.method == expected.method
            if column.kind == "numeric":
                assert column.current_mean == pytest.approx(expected.current_mean, rel=1e-12)
            if column.method == "wasserstein":  # a profile has no per-bin sums: approximate
                assert column.statistic == pytest.approx(expected.statistic, rel=0.2, abs=0.01)
            else:
                assert column.statistic == pytest.approx(expected.statistic, abs=1e-9)


def test_wasserstein_from_a_frame_is_close_to_the_exact_distance(mixed: Mixed) -> None:
    from scipy.stats import wasserstein_distance

    reference = mixed(50_000, 1).assign(heavy=lambda d: np.exp(d["normal"] * 1.2))
    current = mixed(50_000, 2, shift=0.3).assign(heavy=lambda d: np.exp(d["normal"] * 1.2))
    report = detect_drift(reference, current)
    for name in ("normal", "lognormal", "exponential", "heavy", "uniform"):
        exact = wasserstein_distance(reference[name], current[name]) / reference[name].std()
        assert report.columns[name].statistic == pytest.approx(exact, rel=0.03, abs=0.002), name


def test_references_without_a_profile_name_the_fix(mixed: Mixed) -> None:
    current = mixed(100, 1)
    version = DatasetVersion(
        id="v1",
        name="images",
        version=1,
        digest="d",
        manifest_digest="m",
        file_count=1,
        size=1,
        created_at=0.0,
    )
    cases: list[tuple[object, str]] = [
        (None, "no reference was given"),
        ({}, "is empty"),
        ({"files": {"a.csv": {}, "b.csv": {}}}, "pick one file's profile"),
        ({"rows": 3}, "not a Keel profile"),
        (version, "has no stored profile"),
        (42, "cannot use a int as the drift reference"),
        (mixed(0, 1), "the reference has no rows"),
    ]
    for reference, message in cases:
        with pytest.raises(InvalidArgument, match=message) as caught:
            detect_drift(reference, current)  # type: ignore[arg-type]
        assert "profile" in caught.value.message or "rows" in caught.value.message


def test_an_empty_window_is_a_report_that_says_so(mixed: Mixed) -> None:
    report = detect_drift(mixed(2000, 1), mixed(2000, 2).iloc[:0])
    assert report.status == "no_data"
    assert "no rows" in report.message
    assert not report.drifted
    assert report.drifted_columns == []
    assert {c.status for c in report.columns.values()} == {"no_data"}
    json.loads(report.to_json())


def test_a_missing_column_is_a_finding_not_a_crash(mixed: Mixed) -> None:
    current = mixed(2000, 2).drop(columns=["uniform", "city"])
    report = detect_drift(mixed(2000, 1), current)
    assert report.columns["uniform"].status == "missing"
    assert report.columns["city"].status == "missing"
    assert "not in the current data" in report.columns["uniform"].message
    assert {c.column for c in report.findings} == {"uniform", "city"}
    assert report.columns["normal"].status == "ok"


def test_all_nan_columns_are_reported_without_nan_in_json(mixed: Mixed) -> None:
    reference = mixed(3000, 1).assign(empty=np.nan, empty_text=None)
    current = mixed(3000, 2).assign(empty=np.nan, empty_text=None)
    current["normal"] = np.nan
    current["city"] = None
    report = detect_drift(reference, current)
    assert report.columns["empty"].status == "no_reference_data"
    assert report.columns["empty_text"].status == "no_reference_data"
    assert report.columns["normal"].status == "all_missing"
    assert report.columns["normal"].current_missing_share == 1.0
    assert report.columns["city"].status == "all_missing"
    assert not any(c.drifted for c in report.findings)
    text = report.to_json()
    assert "NaN" not in text
    assert json.loads(text)["columns"]["normal"]["statistic"] is None


def test_unseen_categories_are_counted_and_make_the_column_drift(mixed: Mixed) -> None:
    reference, current = mixed(5000, 1), mixed(5000, 2)
    current.loc[: len(current) // 10, "city"] = "<atlantis>"
    report = detect_drift(reference, current)
    city = report.columns["city"]
    assert city.drifted
    assert city.unseen_share == pytest.approx(0.1, abs=0.001)
    assert city.unseen_examples == ["<atlantis>"]
    assert "unseen" in city.message
    small = detect_drift(reference.iloc[:500], current.iloc[:500], columns=["city"])
    assert small.columns["city"].method == "chisquare"
    assert small.columns["city"].drifted


def test_a_type_change_is_a_finding(mixed: Mixed) -> None:
    current = mixed(2000, 2)
    current["normal"] = current["normal"].map(lambda v: f"{v:.2f} kg")
    report = detect_drift(mixed(2000, 1), current)
    normal = report.columns["normal"]
    assert normal.status == "type_mismatch"
    assert not normal.drifted
    assert "convert it" in normal.message


def test_high_cardinality_categories_are_skipped_with_a_reason() -> None:
    ids = pd.DataFrame({"id": [f"user-{i}" for i in range(3000)], "x": np.arange(3000.0)})
    report = detect_drift(ids, ids)
    assert report.columns["id"].status == "high_cardinality"
    assert "group its" in report.columns["id"].message
    assert report.columns["x"].status == "ok"


def test_slices_give_per_slice_reports(mixed: Mixed) -> None:
    reference = mixed(6000, 1).assign(segment=lambda d: np.where(d.index % 3 == 0, "a", "b"))
    current = mixed(6000, 2).assign(segment=lambda d: np.where(d.index % 3 == 0, "a", "b"))
    in_b = current["segment"] == "b"
    current.loc[in_b, "normal"] += 1.0
    current.loc[current.index[:40], "segment"] = "new"
    report = detect_drift(reference, current, slices=["segment"])
    slices = report.slices["segment"]
    assert set(slices) == {"a", "b", "new"}
    assert slices["b"].drifted_columns == ["normal"]
    assert slices["a"].drifted_columns == []
    assert "segment" not in slices["a"].columns
    assert slices["a"].current_rows + slices["b"].current_rows + slices["new"].current_rows == 6000
    assert slices["new"].status == "no_reference"
    assert "refit" in slices["new"].message
    assert report.to_dict()["slices"]["segment"]["b"]["drifted_columns"] == ["normal"]
    assert isinstance(slices["b"], DriftReport)


def test_slices_need_the_reference_rows(mixed: Mixed) -> None:
    profile = profile_frame(mixed(1000, 1).assign(segment="a"))
    with pytest.raises(InvalidArgument, match="pass the reference DataFrame"):
        detect_drift(profile, mixed(100, 2).assign(segment="a"), slices=["segment"])
    with pytest.raises(InvalidArgument, match="bin it first"):
        detect_drift(mixed(1000, 1), mixed(100, 2), slices=["normal"])
    with pytest.raises(InvalidArgument, match="column 'nope' is not in the reference"):
        detect_drift(mixed(1000, 1), mixed(100, 2), slices=["nope"])
    with pytest.raises(InvalidArgument, match="leaves no column to check"):
        detect_drift(mixed(1000, 1), mixed(100, 2), columns="code", slices="code")  # type: ignore[arg-type]
