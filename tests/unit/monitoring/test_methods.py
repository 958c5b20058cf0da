"""Method names, default choices and the multiple-testing correction."""

from __future__ import annotations

import pytest
from scipy.stats import false_discovery_control

from keel.errors import InvalidArgument
from keel.monitoring import ColumnDrift
from keel.monitoring._methods import apply_correction, default_method, method_name


@pytest.mark.parametrize(
    ("categorical", "distinct", "count", "expected"),
    [
        (False, 1001, 1000, "ks"),
        (False, 1001, 1001, "wasserstein"),
        (False, 5, 1000, "chisquare"),
        (False, 5, 50_000, "jensenshannon"),
        (False, 6, 50_000, "wasserstein"),
        (True, 3, 200, "chisquare"),
        (True, 3, 2000, "jensenshannon"),
    ],
)
def test_default_method_by_type_and_size(
    categorical: bool, distinct: int, count: int, expected: str
) -> None:
    assert default_method(categorical, distinct, count, 1000) == expected


def test_method_names_accept_common_spellings() -> None:
    assert method_name("Chi2", "c") == "chisquare"
    assert method_name("jensen-shannon", "c") == "jensenshannon"
    assert method_name(" PSI ", "c") == "psi"
    with pytest.raises(InvalidArgument, match="use one of chisquare, jensenshannon, ks, psi"):
        method_name("anderson", "c")


def test_correction_is_benjamini_hochberg_over_p_value_columns_only() -> None:
    p = [0.001, 0.02, 0.03, 0.2]
    tested = [
        ColumnDrift(f"c{i}", "numeric", method="ks", threshold=0.05, p_value=v)
        for i, v in enumerate(p)
    ]
    distance = ColumnDrift("d", "numeric", method="wasserstein", threshold=0.1, statistic=0.5)
    finding = ColumnDrift("m", "numeric", status="missing", method="ks", p_value=0.0)
    apply_correction([*tested, distance, finding], correct=True)
    adjusted = false_discovery_control(p)
    assert [c.p_value_adjusted for c in tested] == pytest.approx(list(adjusted))
    assert [c.drifted for c in tested] == [bool(a < 0.05) for a in adjusted]
    assert distance.p_value_adjusted is None
    assert finding.p_value_adjusted is None
    uncorrected = [ColumnDrift("c", "numeric", method="ks", threshold=0.05, p_value=0.03)]
    apply_correction(uncorrected, correct=False)
    assert uncorrected[0].drifted
