"""MetricWriter over a real SQLite metadata store: background writes, flush, backpressure."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from keel.errors import NotFound, Unavailable
from keel.stores.metadata import MetadataStore, MetricRow
from keel.tracking import MetricWriter

MISSING_RUN = "0" * 32
DEADLINE_SECONDS = 30.0


class RecordingWrite:
    """The store's own ``log_metrics``, noting which thread made each call."""

    def __init__(self, store: MetadataStore) -> None:
        self._store = store
        self.threads: list[str] = []

    def __call__(self, rows: Sequence[MetricRow]) -> None:
        self.threads.append(threading.current_thread().name)
        self._store.log_metrics(rows)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "keel.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[MetadataStore]:
    opened = MetadataStore.open(f"sqlite:///{db_path}", timeout=0.2)
    yield opened
    opened.close()


@pytest.fixture
def run_ids(store: MetadataStore) -> list[str]:
    experiment = store.get_or_create_experiment("buffer")
    return [store.create_run(experiment.id, f"r{i}").id for i in range(2)]


@pytest.fixture
def writers() -> Iterator[Callable[..., MetricWriter]]:
    made: list[MetricWriter] = []

    def make(write: Callable[[Sequence[MetricRow]], None], **kwargs: float) -> MetricWriter:
        writer = MetricWriter(write, **kwargs)  # type: ignore[arg-type]
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer._closed = True  # stop the threads without writing what a test left queued
        writer._wake.set()


def durable_points(db_path: Path, run_id: str) -> int:
    """Points of ``run_id`` that another connection to the database can see."""
    with sqlite3.connect(db_path) as conn:
        (count,) = conn.execute(
            "SELECT COALESCE(SUM(count), 0) FROM metric_chunks WHERE run_id = ?", (run_id,)
        ).fetchone()
    conn.close()
    return int(count)


def rows_for(run_id: str, n: int, key: str = "loss", start: int = 0) -> list[MetricRow]:
    return [(run_id, key, float(i) / 7, i, 1000.0 + i) for i in range(start, start + n)]


def test_background_thread_writes_without_flush(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    write = RecordingWrite(store)
    writer = writers(write, interval=0.05)
    writer.start()
    for row in rows_for(run_ids[0], 500):
        writer.add(row)
    deadline = time.monotonic() + DEADLINE_SECONDS
    while durable_points(db_path, run_ids[0]) < 500 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert durable_points(db_path, run_ids[0]) == 500
    assert writer.pending() == 0
    assert set(write.threads) == {"keel-metric-writer"}


def test_high_water_wakes_the_thread_before_the_interval(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    write = RecordingWrite(store)
    writer = writers(write, interval=3600, high_water=100)
    writer.extend(rows_for(run_ids[0], 150))
    deadline = time.monotonic() + DEADLINE_SECONDS
    while durable_points(db_path, run_ids[0]) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert durable_points(db_path, run_ids[0]) == 150
    assert write.threads == ["keel-metric-writer"]


def test_flush_makes_every_point_durable_for_other_connections(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    writer = writers(store.log_metrics, interval=0.001)
    writer.start()  # the thread races the flush below
    expected = {run_id: rows_for(run_id, 20_000, key=f"k{n}") for n, run_id in enumerate(run_ids)}
    for rows in expected.values():
        for row in rows:
            writer.add(row)
    writer.flush()
    assert writer.pending() == 0
    for run_id, rows in expected.items():
        assert durable_points(db_path, run_id) == len(rows)
    other = MetadataStore.open(f"sqlite:///{db_path}")
    try:
        for n, (run_id, rows) in enumerate(expected.items()):
            series = other.get_metric_history(run_id, f"k{n}")
            assert sorted(series.steps) == [row[3] for row in rows]
            assert sorted(series.values) == sorted(row[2] for row in rows)
            assert other.get_run(run_id).metrics[f"k{n}"] == rows[-1][2]
    finally:
        other.close()


def test_flush_with_nothing_queued_is_a_no_op(
    store: MetadataStore, writers: Callable[..., MetricWriter]
) -> None:
    write = RecordingWrite(store)
    writer = writers(write)
    writer.flush()
    writer.flush()
    assert write.threads == []


def test_hard_limit_writes_in_the_callers_thread(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    write = RecordingWrite(store)
    writer = writers(write, interval=3600, high_water=10)  # hard limit: 100 points
    writer.extend(rows_for(run_ids[0], 100))
    # Backpressure: the caller wrote the batch itself before extend() returned.
    assert writer.pending() == 0
    assert write.threads == [threading.current_thread().name]
    assert durable_points(db_path, run_ids[0]) == 100


def test_points_below_the_hard_limit_are_not_written_by_the_caller(
    store: MetadataStore, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    write = RecordingWrite(store)
    writer = writers(write, interval=3600, high_water=10)
    writer.extend(rows_for(run_ids[0], 99))
    assert threading.current_thread().name not in write.threads
    writer.flush()
    assert writer.pending() == 0


def test_missing_run_keeps_other_runs_points_and_flush_raises_once(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    writer = writers(store.log_metrics, interval=3600)
    writer.add((run_ids[0], "loss", 1.0, 0, 1.0))
    writer.add((MISSING_RUN, "loss", 2.0, 0, 1.0))
    writer.add((run_ids[1], "loss", 3.0, 0, 1.0))
    writer.add((run_ids[0], "loss", 4.0, 1, 1.0))
    with pytest.raises(NotFound) as caught:
        writer.flush()
    assert caught.value.details["run_ids"] == [MISSING_RUN]
    assert "start_run" in caught.value.message
    assert durable_points(db_path, run_ids[0]) == 2
    assert durable_points(db_path, run_ids[1]) == 1
    assert durable_points(db_path, MISSING_RUN) == 0
    # The error was reported; the writer carries on.
    writer.flush()
    writer.add((run_ids[1], "loss", 5.0, 1, 2.0))
    writer.flush()
    assert durable_points(db_path, run_ids[1]) == 2


def test_missing_run_in_background_write_is_raised_by_the_next_flush_once(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    writer = writers(store.log_metrics, interval=0.01)
    writer.start()
    writer.extend([(run_ids[0], "loss", 1.0, 0, 1.0), (MISSING_RUN, "loss", 2.0, 0, 1.0)])
    deadline = time.monotonic() + DEADLINE_SECONDS
    while durable_points(db_path, run_ids[0]) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert durable_points(db_path, run_ids[0]) == 1
    with pytest.raises(NotFound, match=MISSING_RUN):
        writer.flush()
    writer.flush()


def test_locked_database_keeps_the_points_until_a_later_flush(
    store: MetadataStore, db_path: Path, run_ids: list[str], writers: Callable[..., MetricWriter]
) -> None:
    writer = writers(store.log_metrics, interval=3600)
    writer.extend(rows_for(run_ids[0], 50))
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        with pytest.raises(Unavailable, match="KEEL_DB_TIMEOUT"):
            writer.flush()
        assert writer.pending() == 50
        writer.extend(rows_for(run_ids[0], 10, start=50))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    writer.flush()
    assert writer.pending() == 0
    series = store.get_metric_history(run_ids[0], "loss")
    assert list(series.steps) == list(range(60))  # put back in order, nothing lost


def test_close_writes_what_is_queued_and_stops_the_thread(
    store: MetadataStore, db_path: Path, run_ids: list[str]
) -> None:
    writer = MetricWriter(store.log_metrics, interval=3600)
    writer.start()
    thread = writer._thread
    assert thread is not None
    assert thread.is_alive()
    writer.extend(rows_for(run_ids[1], 30))
    writer.close()
    assert durable_points(db_path, run_ids[1]) == 30
    assert not thread.is_alive()
