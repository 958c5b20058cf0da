"""Search results as a DataFrame: the column-wise build gives the row-by-row frame."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keel.context import get_context
from keel.core._entities import Run, RunStatus
from keel.core._filter import parse_filter
from keel.errors import InvalidArgument
from keel.stores.metadata import MetadataStore
from keel.tracking import runs_to_frame
from keel.tracking._frame import rows_to_frame


def reference_frame(found: Sequence[Run]) -> pd.DataFrame:
    """The frame built the plain way: one value at a time, row by row."""
    columns: dict[str, Any] = {
        "run_id": [r.id for r in found],
        "experiment_id": [r.experiment_id for r in found],
        "run_name": [r.name for r in found],
        "status": [r.status.value for r in found],
        "start_time": pd.to_datetime([r.start_time for r in found], unit="s", utc=True),
        "end_time": pd.to_datetime(
            [math.nan if r.end_time is None else r.end_time for r in found], unit="s", utc=True
        ),
        "parent_run_id": [r.parent_id for r in found],
    }
    for prefix in ("metrics", "params", "tags"):
        for key in sorted({k for r in found for k in getattr(r, prefix)}):
            default = math.nan if prefix == "metrics" else None
            columns[f"{prefix}.{key}"] = [getattr(r, prefix).get(key, default) for r in found]
    return pd.DataFrame(columns)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(f"sqlite:///{tmp_path / 'keel.db'}")
    yield opened
    opened.close()


def _fill(store: MetadataStore) -> str:
    exp = store.create_experiment("frame").id
    parent = store.create_run(exp, "parent", start_time=1.0)
    specials = [math.nan, math.inf, -math.inf, 1e308, 5e-324, 0.25]
    for i, value in enumerate(specials):
        run = store.create_run(
            exp,
            f"r{i}",
            parent_id=parent.id if i % 2 else None,
            tags_={"team": "risk"} if i % 3 == 0 else {},
            start_time=10.0 + i + 0.123456,
        )
        # the same keys in another order for some runs, extra keys for others
        keys = {"lr": str(i), "model": "rf"} if i % 2 else {"model": "lr", "lr": str(i)}
        if i == 4:
            keys["only_here"] = "x"
        store.log_params(run.id, keys)
        store.log_metrics([(run.id, "special", value, 0, 1.0), (run.id, f"m{i % 2}", i, 0, 1.0)])
        if i % 2:
            store.set_run_status(run.id, RunStatus.FINISHED, 100.0 + i)
    return exp


@pytest.mark.parametrize(
    "text", [None, "metrics.special > 0", "params.model = 'rf'", "params.model = 'none'"]
)
def test_rows_give_the_row_by_row_frame(store: MetadataStore, text: str | None) -> None:
    exp = _fill(store)
    expr = parse_filter(text)
    expected = reference_frame(store.search_runs([exp], expr, ()))
    pd.testing.assert_frame_equal(rows_to_frame(store.search_run_rows([exp], expr, ())), expected)
    pd.testing.assert_frame_equal(runs_to_frame(store.search_runs([exp], expr, ())), expected)


def test_frame_keeps_special_values_and_missing_ones(store: MetadataStore) -> None:
    exp = _fill(store)
    frame = rows_to_frame(store.search_run_rows([exp], None, ()))
    by_name = frame.set_index("run_name")
    assert math.isnan(by_name.loc["r0", "metrics.special"])
    assert by_name.loc["r1", "metrics.special"] == math.inf
    assert by_name.loc["r2", "metrics.special"] == -math.inf
    assert math.isnan(by_name.loc["parent", "metrics.special"])
    assert by_name.loc["r4", "params.only_here"] == "x"
    assert pd.isna(by_name.loc["r3", "params.only_here"])
    assert frame.columns.tolist()[:7] == [
        "run_id",
        "experiment_id",
        "run_name",
        "status",
        "start_time",
        "end_time",
        "parent_run_id",
    ]
    assert frame.columns.tolist()[7:] == [
        "metrics.m0",
        "metrics.m1",
        "metrics.special",
        "params.lr",
        "params.model",
        "params.only_here",
        "tags.team",
    ]


def test_service_search_frame_after_tag_changes(keel_home: Path) -> None:
    tracking = get_context().tracking
    run = tracking.create_run("tags", "r", tags={"team": "risk", "stage": "dev"})
    tracking.set_tags(run.id, {"stage": "prod"})
    tracking.delete_tags(run.id, ["team"])
    with pytest.raises(InvalidArgument):
        tracking.delete_tags(run.id, ["bad key!"])
    frame = tracking.search_runs_frame("tags", "tags.stage = 'prod'")
    assert frame["run_id"].tolist() == [run.id]
    assert [c for c in frame.columns if c.startswith("tags.")] == ["tags.stage"]
    assert tracking.search_runs_frame("tags", "tags.team IS NOT NULL").empty
