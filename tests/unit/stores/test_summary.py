"""Run summaries: the JSON text round-trips every value a run can hold."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from keel.stores.metadata._summary import EMPTY, decode, encode, parts_of_many

keys = st.text(min_size=1, max_size=20)
texts = st.text(max_size=50)
floats = st.floats(allow_nan=True, allow_infinity=True)


def _same_metric(got: float, want: float) -> bool:
    return (math.isnan(got) and math.isnan(want)) or (
        got == want and math.copysign(1, got) == math.copysign(1, want)
    )


@given(
    st.dictionaries(keys, texts, max_size=5),
    st.dictionaries(keys, floats, max_size=5),
    st.dictionaries(keys, texts, max_size=5),
)
def test_encode_then_decode_gives_the_values_back(
    params: dict[str, str], metrics: dict[str, float], tags: dict[str, str]
) -> None:
    logged, latest, tagged = decode(encode(params, metrics, tags))
    assert (logged, tagged) == (params, tags)
    assert latest.keys() == metrics.keys()
    assert all(_same_metric(latest[k], metrics[k]) for k in metrics)


@given(st.lists(st.dictionaries(keys, floats, max_size=4), max_size=6))
def test_numpy_reads_stored_metrics_as_decode_does(runs: list[dict[str, float]]) -> None:
    _, metrics, _ = parts_of_many([encode({}, m, {}) for m in runs])
    for stored, original in zip(metrics, runs, strict=True):
        for key, want in original.items():
            assert _same_metric(float(np.array([stored[key]], dtype="float64")[0]), want)


def test_a_run_with_nothing_logged_has_the_empty_summary() -> None:
    assert encode({}, {}, {}) == EMPTY
    assert decode(EMPTY) == ({}, {}, {})
    assert parts_of_many([EMPTY, EMPTY]) == ([{}, {}], [{}, {}], [{}, {}])
