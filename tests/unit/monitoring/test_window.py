"""Window counts: chunk by chunk equals all at once; categories map onto the reference's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keel.core import _stats
from keel.monitoring._reference import profile_reference
from keel.monitoring._source import ArrowChunk, FrameChunk
from keel.monitoring._window import UNSEEN_EXAMPLES, WindowCounter

Mixed = Callable[..., pd.DataFrame]


def test_chunked_counts_equal_counts_of_the_whole(mixed: Mixed) -> None:
    reference = profile_reference(mixed(5000, 1))
    current = mixed(9000, 2, shift=0.3)
    counter = WindowCounter(reference, list(reference.columns), {})
    for start in range(0, 9000, 2000):
        counter.update(FrameChunk(current.iloc[start : start + 2000]))
    assert counter.rows == 9000
    normal = counter.numeric["normal"]
    edges = reference.columns["normal"].edges
    assert edges is not None
    np.testing.assert_array_equal(
        normal.summary.counts, _stats.bin_counts(current["normal"].to_numpy(), edges)
    )
    n, mean, m2 = normal.summary.moments
    assert n == 9000
    assert mean == pytest.approx(current["normal"].mean(), rel=1e-12)
    assert np.sqrt(m2 / (n - 1)) == pytest.approx(current["normal"].std(), rel=1e-9)
    below = current["normal"][current["normal"] < edges[0]]
    assert normal.summary.low == (below.min() if len(below) else np.inf)
    assert normal.summary.sums is None  # only collected for Wasserstein against a frame
    city = counter.categorical["city"]
    expected = current["city"].value_counts()
    assert dict(zip(city.keys, city.counts[:-1].tolist(), strict=True)) == expected.to_dict()


def test_categories_of_another_type_are_matched_as_text() -> None:
    reference = profile_reference(pd.DataFrame({"code": ["1", "2", "3"] * 100}))
    counter = WindowCounter(reference, ["code"], {})
    counter.update(ArrowChunk(pa.record_batch({"code": pa.array([1, 2, 2, 7, None])})))
    code = counter.categorical["code"]
    assert dict(zip(code.keys, code.counts[:-1].tolist(), strict=True)) == {"1": 1, "2": 2, "3": 0}
    assert code.counts[-1] == 1
    assert code.unseen == {7: 1}  # examples keep the value as it came
    assert code.missing == 1


def test_unseen_examples_are_capped_but_all_counted() -> None:
    reference = profile_reference(pd.DataFrame({"c": ["a", "b"] * 50}))
    counter = WindowCounter(reference, ["c"], {})
    values = [f"new-{i}" for i in range(UNSEEN_EXAMPLES + 500)]
    counter.update(ArrowChunk(pa.record_batch({"c": pa.array(values)})))
    counts = counter.categorical["c"]
    assert len(counts.unseen) == UNSEEN_EXAMPLES
    assert counts.counts[-1] == len(values)
