"""DriftReport: verdicts from column results, strict JSON, a short repr."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

from keel.monitoring import ColumnDrift, DriftReport, detect_drift

Mixed = Callable[..., pd.DataFrame]


def _report(*drifted: bool, findings: int = 0) -> DriftReport:
    columns = {f"c{i}": ColumnDrift(f"c{i}", "numeric", drifted=d) for i, d in enumerate(drifted)}
    for i in range(findings):
        columns[f"q{i}"] = ColumnDrift(f"q{i}", "numeric", status="missing")
    return DriftReport(columns, 100, 100)


def test_share_and_dataset_verdict() -> None:
    report = _report(True, False, False, True, findings=2)
    assert report.drifted_columns == ["c0", "c3"]
    assert report.compared_columns == ["c0", "c1", "c2", "c3"]
    assert report.drift_share == 0.5
    assert report.drifted  # 0.5 >= dataset_share 0.5
    report.dataset_share = 0.75
    assert not report.drifted
    assert [c.column for c in report.findings] == ["q0", "q1"]
    assert not _report(findings=3).drifted
    assert _report(findings=3).drift_share == 0.0


def test_to_dict_is_strict_json_everywhere(mixed: Mixed) -> None:
    reference = mixed(3000, 1).assign(gap=np.nan, segment=["a", "b", "c"] * 1000)
    current = mixed(3000, 2, shift=1.0, moved=0.2).assign(gap=np.nan, segment="a")
    current["flag"] = current["flag"].astype(object)
    current.loc[:5, "flag"] = None
    current["uniform"] = np.inf
    report = detect_drift(reference, current, slices=["segment"])
    data = report.to_dict(distributions=True)
    text = json.dumps(data, allow_nan=False)  # raises on NaN or Infinity
    back = json.loads(text)
    assert back["columns"]["normal"]["drifted"] is True
    assert back["columns"]["normal"]["distribution"]["edges"]
    assert back["columns"]["city"]["distribution"]["labels"][-1] == "(unseen)"
    assert back["columns"]["uniform"]["status"] == "all_missing"
    assert set(back["slices"]["segment"]) == {"a", "b", "c"}
    assert back["slices"]["segment"]["b"]["status"] == "no_data"
    assert "distribution" not in report.to_dict()["columns"]["normal"]
    assert json.loads(report.to_json())["drifted_columns"] == report.drifted_columns


def test_column_fields_explain_the_verdict(mixed: Mixed) -> None:
    report = detect_drift(mixed(5000, 1), mixed(5000, 2, shift=0.5, moved=0.15))
    normal = report.columns["normal"].to_dict()
    assert normal["reference_mean"] is not None
    assert normal["current_mean"] - normal["reference_mean"] > 0.3
    assert "unseen_share" not in normal
    city = report.columns["city"].to_dict()
    assert city["unseen_share"] == 0.0
    assert {c["value"] for c in city["top_changes"][:2]} == {"paris", "nice"}
    assert "mean_shift" not in city
    assert "'paris'" in report.columns["city"].message
    assert math.isclose(report.columns["normal"].threshold or 0, 0.1)


def test_repr_is_short(mixed: Mixed) -> None:
    report = detect_drift(mixed(2000, 1), mixed(2000, 2, shift=1.0))
    assert repr(report) == (
        "DriftReport(ok, 2000 rows vs 2000: 2/9 columns drifted [normal, exponential])"
    )


def test_rich_table_lists_drifted_columns_first(mixed: Mixed) -> None:
    from rich.console import Console

    report = detect_drift(mixed(2000, 1), mixed(2000, 2, shift=1.0).drop(columns=["city"]))
    console = Console(width=200, record=True)
    console.print(report)
    text = console.export_text()
    assert "2 of 8 columns" in text
    assert text.index("normal") < text.index("uniform")
    assert "missing" in text
