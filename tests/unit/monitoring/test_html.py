"""The HTML report: one self-contained file, every data-derived string escaped."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from keel.monitoring import detect_drift

Mixed = Callable[..., pd.DataFrame]
EVIL = "<script>alert(1)</script>"


def test_html_is_self_contained_and_escapes_names_values_and_slices(
    mixed: Mixed, tmp_path: Path
) -> None:
    reference = mixed(4000, 1).rename(columns={"normal": EVIL})
    reference["segment"] = np.where(reference.index % 2 == 0, "<b>even</b>", "odd")
    current = mixed(4000, 2, shift=1.0).rename(columns={"normal": EVIL})
    current["segment"] = np.where(current.index % 2 == 0, "<b>even</b>", "odd")
    current.loc[:400, "city"] = "<img src=x onerror=alert(2)>"
    report = detect_drift(reference, current, slices=["segment"])
    assert EVIL in report.drifted_columns
    path = report.to_html(tmp_path / "out" / "drift.html")
    text = path.read_text(encoding="utf-8")
    assert "<script" not in text
    assert "<img src=x" not in text
    assert "<b>even" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;b&gt;even&lt;/b&gt;" in text
    assert "&lt;img src=x onerror=alert(2)&gt;" in text
    images = re.findall(r'<img alt="[^"]*" src="data:image/png;base64,[A-Za-z0-9+/=]+">', text)
    assert len(images) == len(report.drifted_columns)
    assert not re.search(r'(src|href)="(?!data:)', text)  # nothing fetched from elsewhere


def test_html_of_an_empty_window_and_of_findings(mixed: Mixed, tmp_path: Path) -> None:
    reference = mixed(1000, 1)
    empty = detect_drift(reference, reference.iloc[:0]).to_html(tmp_path / "empty.html")
    text = empty.read_text(encoding="utf-8")
    assert "no rows" in text
    assert "data:image/png" not in text
    missing = detect_drift(reference, reference.drop(columns=["city"])).to_html(tmp_path / "m.html")
    assert "Data quality" in missing.read_text(encoding="utf-8")
