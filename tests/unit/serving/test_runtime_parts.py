"""The parts around a prediction: routing, canary verdicts, batching, the log, the dashboard."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keel.core._deployments import CanaryPolicy, DeploymentPolicy
from keel.serving import (
    Decoded,
    FeedbackEntry,
    LogEntry,
    MicroBatcher,
    Prediction,
    PredictionLogReader,
    PredictionLogWriter,
    ServingMetrics,
)
from keel.serving._router import Router, Variant, VariantStats, canary_verdict


def _variant(name: str, share: float, role: str = "route") -> Variant:
    return Variant(name, f"models:/m/{len(name)}", role, share, MicroBatcher(name=name))


def test_weights_and_canary_share_and_sticky_keys() -> None:
    policy = DeploymentPolicy.from_dict(
        {
            "routes": [
                {"name": "a", "model": "models:/m/1", "weight": 1},
                {"name": "b", "model": "models:/m/2", "weight": 1},
            ],
            "canary": {"model": "models:/m/3", "percent": 20},
        }
    )
    router = Router(
        policy, 1, [_variant("a", 1), _variant("b", 1)], _variant("canary", 20, "canary"), None
    )
    seen = Counter(router.pick(None).name for _ in range(20_000))
    assert abs(seen["canary"] / 20_000 - 0.2) < 0.02
    assert abs(seen["a"] / 20_000 - 0.4) < 0.02
    keyed = Counter(router.pick(f"user-{i}").name for i in range(20_000))
    assert abs(keyed["canary"] / 20_000 - 0.2) < 0.02  # hashing spreads keys like weights
    for i in range(100):
        assert len({router.pick(f"user-{i}").name for _ in range(5)}) == 1


def _stats(errors: int, ok: int, seconds: float) -> VariantStats:
    stats = VariantStats()
    for _ in range(errors):
        stats.record(False, seconds)
    for _ in range(ok):
        stats.record(True, seconds)
    return stats


def test_canary_verdicts() -> None:
    canary = CanaryPolicy("models:/m/2", 10, max_error_rate_increase=0.05, min_requests=50)
    healthy = _stats(0, 100, 0.001)
    assert canary_verdict(canary, healthy, _stats(1, 99, 0.001)) is None
    assert "error rate" in (canary_verdict(canary, healthy, _stats(10, 90, 0.001)) or "")
    assert "p95 latency" in (canary_verdict(canary, healthy, _stats(0, 100, 0.01)) or "")
    assert canary_verdict(canary, healthy, _stats(10, 10, 0.001)) is None  # too few yet


class _Model:
    """Stands in for ServedModel: records each predict call's batch sizes."""

    def __init__(self, fail_on: float | None = None, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.threads: list[str] = []
        self.fail_on = fail_on
        self.delay = delay

    def predict_many(self, batch: list[Decoded]) -> list[Prediction]:
        import threading

        time.sleep(self.delay)
        self.calls.append(len(batch))
        self.threads.append(threading.current_thread().name)
        out = []
        for d in batch:
            assert d.matrix is not None
            if self.fail_on is not None and (d.matrix == self.fail_on).any():
                raise ValueError("bad row")
            out.append(Prediction(d.matrix[:, 0] * 2, None))
        return out


def _decoded(value: float) -> Decoded:
    return Decoded(1, matrix=np.array([[value]]))


def test_batcher_answers_each_request_with_its_own_rows_and_groups_them() -> None:
    model = _Model(delay=0.01)
    batcher = MicroBatcher(max_batch_rows=64)

    async def main() -> list[Prediction]:
        return await asyncio.gather(*(batcher.submit(model, _decoded(i)) for i in range(40)))  # type: ignore[arg-type]

    results = asyncio.run(main())
    assert [r.labels.tolist() for r in results] == [[2.0 * i] for i in range(40)]
    assert len(model.calls) < 40
    assert sum(model.calls) == 40
    batcher.close()


def test_a_lone_request_does_not_wait_for_company() -> None:
    """With nothing else arriving, a request is predicted at once, not after max_wait."""
    model = _Model()
    batcher = MicroBatcher(max_wait=3600.0, arriving=lambda: 0)

    async def main() -> Prediction:
        # An hour's max_wait: only a batcher that waits for company can miss this bound.
        return await asyncio.wait_for(batcher.submit(model, _decoded(1)), timeout=60)  # type: ignore[arg-type]

    assert asyncio.run(main()).labels.tolist() == [2.0]
    batcher.close()


@pytest.mark.parametrize(
    ("in_flight", "rows", "inline"),
    [(1, 1, True), (1, 32, True), (1, 33, False), (2, 1, False), (None, 1, False)],
)
def test_only_a_small_request_alone_in_the_server_skips_the_predict_thread(
    in_flight: int | None, rows: int, inline: bool
) -> None:
    import threading

    model = _Model()
    batches: list[tuple[int, int]] = []
    batcher = MicroBatcher(
        in_flight=None if in_flight is None else (lambda: in_flight),
        on_batch=lambda n, r: batches.append((n, r)),
        name="t",
    )
    decoded = Decoded(rows, matrix=np.arange(rows, dtype=float).reshape(rows, 1))
    result = asyncio.run(batcher.submit(model, decoded))  # type: ignore[arg-type]
    assert result.labels.tolist() == [2.0 * i for i in range(rows)]
    here = threading.current_thread().name
    assert (model.threads == [here]) is inline
    assert batches == [(1, rows)]
    batcher.close()


def test_requests_that_arrive_together_are_batched_even_when_each_starts_alone() -> None:
    """Each handler counts itself in flight only once it runs: the first one to run sees
    itself alone, and must still let the others start and join its batch."""
    model = _Model(delay=0.005)
    in_flight = 0
    batcher = MicroBatcher(in_flight=lambda: in_flight, max_batch_rows=64)

    async def one(i: int) -> Prediction:
        nonlocal in_flight
        in_flight += 1
        try:
            return await batcher.submit(model, _decoded(i))  # type: ignore[arg-type]
        finally:
            in_flight -= 1

    async def main() -> list[Prediction]:
        return await asyncio.gather(*(one(i) for i in range(40)))

    results = asyncio.run(main())
    assert [r.labels.tolist() for r in results] == [[2.0 * i] for i in range(40)]
    assert len(model.calls) <= 3, model.calls
    batcher.close()


def test_a_failing_request_alone_fails_alone_without_the_predict_thread() -> None:
    model = _Model(fail_on=13.0)
    batcher = MicroBatcher(in_flight=lambda: 1)
    with pytest.raises(ValueError, match="bad row"):
        asyncio.run(batcher.submit(model, _decoded(13.0)))  # type: ignore[arg-type]
    assert asyncio.run(batcher.submit(model, _decoded(2.0))).labels.tolist() == [4.0]  # type: ignore[arg-type]
    batcher.close()


def test_one_failing_request_does_not_fail_its_batch_neighbours() -> None:
    model = _Model(fail_on=13.0, delay=0.005)
    batcher = MicroBatcher()

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(batcher.submit(model, _decoded(i)) for i in range(30)),  # type: ignore[arg-type]
            return_exceptions=True,
        )

    results = asyncio.run(main())
    failed = [i for i, r in enumerate(results) if isinstance(r, Exception)]
    assert failed == [13]
    batcher.close()


def _entry(ts: float, request: str, rows: int) -> LogEntry:
    frame = pd.DataFrame({"a": np.arange(rows, dtype=float)})
    return LogEntry(
        timestamp=ts,
        request_id=request,
        variant="primary",
        model_version="1",
        latency_seconds=0.001,
        features=frame.to_numpy(),
        labels=np.arange(rows) % 2,
        proba=np.column_stack([np.full(rows, 0.3), np.full(rows, 0.7)]),
        classes=[0, 1],
        columns=[("a", "float")],
    )


def test_log_segments_per_hour_and_windows(tmp_path: Path) -> None:
    writer = PredictionLogWriter(tmp_path, "dep", flush_interval=0.05)
    base = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC
    writer.append(_entry(base, "r1", 3))
    writer.append(_entry(base + 3600, "r2", 2))
    writer.append(FeedbackEntry(base + 10, "r1", 1, json.dumps("yes")))
    writer.close()
    reader = PredictionLogReader(tmp_path)
    hours = {p.parent.name for p in reader.segments("dep")}
    assert hours == {"22", "23"}
    assert reader.read("dep").num_rows == 5
    from datetime import UTC, datetime

    first_hour = reader.read(
        "dep", datetime.fromtimestamp(base - 1, UTC), datetime.fromtimestamp(base + 60, UTC)
    )
    assert first_hour.column("keel_request_id").to_pylist() == ["r1"] * 3
    joined = reader.read("dep", with_feedback=True).to_pandas()
    labelled = joined.loc[joined.keel_label.notna(), ["keel_request_id", "keel_row"]]
    assert labelled.values.tolist() == [["r1", 1]]
    assert joined["keel_proba_1"].tolist() == [0.7] * 5
    assert not list(tmp_path.rglob(".*.tmp"))


def test_log_segments_use_dictionary_pages_for_text_only(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    writer = PredictionLogWriter(tmp_path, "dep", flush_interval=0.05)
    writer.append(_entry(1_700_000_000.0, "r1", 50))
    writer.close()
    (segment,) = PredictionLogReader(tmp_path).segments("dep")
    meta = pq.ParquetFile(segment).metadata
    encodings = {
        meta.schema.column(i).name: set(meta.row_group(0).column(i).encodings)
        for i in range(meta.num_columns)
    }
    dictionary = {"PLAIN_DICTIONARY", "RLE_DICTIONARY"}
    assert encodings["keel_request_id"] & dictionary
    assert encodings["keel_model_version"] & dictionary
    for name in ("a", "keel_latency_seconds", "keel_proba_1", "keel_prediction"):
        assert not encodings[name] & dictionary, (name, encodings[name])


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    dropped: list[int] = []
    writer = PredictionLogWriter(
        tmp_path, "dep", queue_rows=10, flush_interval=60, on_drop=dropped.append
    )
    accepted = [writer.append(_entry(time.time(), f"r{i}", 4)) for i in range(5)]
    assert accepted == [True, True, False, False, False]  # 10 unwritten rows at most
    assert sum(dropped) == 4 * accepted.count(False)
    writer.close()


def test_unknown_deployment_names_are_refused_not_turned_into_paths(tmp_path: Path) -> None:
    from keel.errors import InvalidArgument

    for name in ("../up", "a/b", "", "UPPER", ".hidden"):
        with pytest.raises(InvalidArgument):
            PredictionLogWriter(tmp_path, name)
        with pytest.raises(InvalidArgument):
            PredictionLogReader(tmp_path).segments(name)


def test_the_grafana_dashboard_queries_only_metrics_that_exist() -> None:
    import re
    from importlib import resources

    text = resources.files("keel.serving").joinpath("grafana-dashboard.json").read_text()
    dashboard = json.loads(text)
    metrics = ServingMetrics("x")
    known: set[str] = set()
    for family in metrics.registry.collect():
        for sample in family.samples:
            known.add(sample.name)
        known.add(family.name)
        known.update({f"{family.name}_total", f"{family.name}_bucket", f"{family.name}_sum"})
        known.update({f"{family.name}_count"})
    from keel.cli._monitor import _GAUGES  # exported by `keel monitor watch`

    known.update(_GAUGES.values())
    used = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            used.update(re.findall(r"\b(keel_[a-z_]+)", target["expr"]))
    assert used
    assert used <= known, used - known
