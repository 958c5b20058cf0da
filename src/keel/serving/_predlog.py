"""The prediction log: every served row, appended asynchronously to Parquet segments.

Layout under the log root: ``<deployment>/<YYYY-MM-DD>/<HH>/<segment>.parquet`` for
predictions and ``<deployment>/feedback/<YYYY-MM-DD>/<HH>/<segment>.parquet`` for
labels sent to ``/feedback``. The deployment name is a validated identifier
(``[a-z][a-z0-9_-]*``), never a user path. Segments are written to a hidden temporary
name and renamed, so readers never see half a file.

Writers never block a prediction: entries go to a bounded queue; when it is full the
entry is dropped and counted (``on_drop``). A background thread flushes every
``flush_interval`` seconds or ``segment_rows`` rows. A write that fails (disk full, a
directory made read-only) is reported through ``on_error`` and its rows counted as
dropped; serving goes on and the next flush tries again.

Columns: the model's input features under their own names, then ``keel_request_id``,
``keel_row``, ``keel_timestamp`` (UTC), ``keel_variant``, ``keel_model_version``,
``keel_latency_seconds``, ``keel_prediction`` and, for classifiers,
``keel_proba_<class>`` per class. Feature names starting with ``keel_`` are reserved.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._deployments import validate_deployment_name
from keel.errors import InvalidArgument
from keel.serving._memory import release_heap

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

__all__ = [
    "RESERVED_PREFIX",
    "FeedbackEntry",
    "LogEntry",
    "PredictionLogReader",
    "PredictionLogWriter",
]

log = logging.getLogger("keel.serving")
RESERVED_PREFIX = "keel_"
_ERROR_LOG_INTERVAL = 60.0
_TICK: Any = object()  # "the flush interval passed" in the writer loop


@dataclass(frozen=True)
class LogEntry:
    """One request's rows as served: features, outputs, who served them, how fast."""

    timestamp: float
    request_id: str
    variant: str
    model_version: str
    latency_seconds: float
    features: Any  # the checked rows: a DataFrame, or a float matrix in ``columns`` order
    labels: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None
    classes: Sequence[Any] | None
    columns: Sequence[tuple[str, str]] = ()  # (name, logical type) of a matrix's columns


@dataclass(frozen=True)
class FeedbackEntry:
    """Ground truth for a served row, joined to predictions by request id and row."""

    timestamp: float
    request_id: str
    row: int | None
    label: str  # the label as JSON text, so any label type round-trips


class PredictionLogWriter:
    """Bounded-queue, background-thread writer of one deployment's prediction log."""

    def __init__(
        self,
        root: Path,
        deployment: str,
        *,
        queue_size: int = 10_000,
        queue_rows: int = 200_000,
        flush_interval: float = 1.0,
        segment_rows: int = 100_000,
        on_drop: Callable[[int], None] = lambda n: None,
        on_error: Callable[[BaseException], None] = lambda e: None,
        on_write: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.root = Path(root)
        self.deployment = validate_deployment_name(deployment)
        self.flush_interval = flush_interval
        self.segment_rows = segment_rows
        self._on_drop, self._on_error, self._on_write = on_drop, on_error, on_write
        self._queue: queue.Queue[LogEntry | FeedbackEntry | None] = queue.Queue(queue_size)
        self.queue_rows = queue_rows
        self._queued_rows = 0
        self._rows_lock = threading.Lock()
        self._last_error_log = 0.0
        self._thread = threading.Thread(target=self._loop, name="keel-predlog", daemon=True)
        self._thread.start()

    def append(self, entry: LogEntry | FeedbackEntry) -> bool:
        """Queue ``entry`` without waiting; False (and counted) when the queue is full.

        Bounded twice: in entries, and in rows not yet written (queued or waiting for
        the next flush), so that large requests or a slow disk cannot make the log hold
        more than ``queue_rows`` rows in memory.
        """
        rows = _rows(entry)
        with self._rows_lock:
            if self._queued_rows + rows > self.queue_rows:
                full = True
            else:
                full = False
                self._queued_rows += rows
        if not full:
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                full = True
                with self._rows_lock:
                    self._queued_rows -= rows
        if full:
            self._on_drop(rows)
            return False
        return True

    def close(self, timeout: float = 10.0) -> None:
        """Flush what is queued and stop the writer thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout)

    # the writer thread ---------------------------------------------------------------

    def _loop(self) -> None:
        pending: list[LogEntry] = []
        feedback: list[FeedbackEntry] = []
        rows = 0
        next_flush = time.monotonic() + self.flush_interval
        while True:
            try:
                entry = self._queue.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                entry = _TICK
            if entry is None:  # close(): write what is left and stop
                self._flush(pending, feedback)
                return
            if entry is not _TICK:
                self._keep(entry, pending, feedback)
                rows += _rows(entry)
            if rows >= self.segment_rows or time.monotonic() >= next_flush:
                flushed = bool(pending or feedback)
                self._flush(pending, feedback)
                if flushed:
                    release_heap()
                pending, feedback, rows = [], [], 0
                next_flush = time.monotonic() + self.flush_interval

    @staticmethod
    def _keep(
        entry: LogEntry | FeedbackEntry, pending: list[LogEntry], feedback: list[FeedbackEntry]
    ) -> None:
        if isinstance(entry, LogEntry):
            pending.append(entry)
        else:
            feedback.append(entry)

    def _flush(self, pending: list[LogEntry], feedback: list[FeedbackEntry]) -> None:
        for group, kind in ((pending, "predictions"), (feedback, "feedback")):
            if not group:
                continue
            for hour, entries in _by_hour(group).items():
                rows = sum(_rows(e) for e in entries)
                try:
                    if kind == "predictions":
                        table = _prediction_table(entries)
                    else:
                        table = _feedback_table(entries)
                    self._write(table, hour, kind)
                except Exception as error:  # keep serving whatever the disk does
                    self._on_drop(rows)
                    self._on_error(error)
                    now = time.monotonic()
                    if now - self._last_error_log >= _ERROR_LOG_INTERVAL:
                        self._last_error_log = now
                        log.error(
                            "prediction log for %r could not write %d rows (%s: %s); serving "
                            "continues, rows are counted in keel_prediction_log_dropped_total",
                            self.deployment,
                            rows,
                            type(error).__name__,
                            error,
                        )
                else:
                    self._on_write(rows)
                finally:
                    with self._rows_lock:
                        self._queued_rows -= rows

    def _write(self, table: pa.Table, hour: datetime, kind: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        folder = self.root / self.deployment
        if kind == "feedback":
            folder = folder / "feedback"
        folder = folder / hour.strftime("%Y-%m-%d") / hour.strftime("%H")
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        temporary = folder / f".{name}.tmp"
        # Dictionary pages only for text: numeric features rarely repeat, and trying a
        # dictionary on every float column tripled the write time of 1,000-row requests.
        # LZ4 rather than zstd: a third less CPU for files ~5% larger (features are
        # mostly incompressible floats), and the log shares the server's cores.
        text = [
            field.name
            for field in table.schema
            if pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        ]
        try:
            pq.write_table(table, temporary, compression="lz4", use_dictionary=text)
            os.replace(temporary, folder / name)
        finally:
            temporary.unlink(missing_ok=True)


def _rows(entry: LogEntry | FeedbackEntry) -> int:
    return len(entry.labels) if isinstance(entry, LogEntry) else 1


def _by_hour(entries: Sequence[Any]) -> dict[datetime, list[Any]]:
    out: dict[datetime, list[Any]] = {}
    for entry in entries:
        moment = datetime.fromtimestamp(entry.timestamp, UTC)
        out.setdefault(moment.replace(minute=0, second=0, microsecond=0), []).append(entry)
    return out


def _prediction_table(entries: Sequence[LogEntry]) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    table = _feature_table(entries)
    counts = [len(e.labels) for e in entries]
    owner = pa.array(np.repeat(np.arange(len(entries)), counts))  # entry of every row

    def repeat(values: list[Any], kind: pa.DataType) -> pa.Array:
        return pa.array(values, kind).take(owner)

    labels = np.concatenate([e.labels for e in entries])
    meta: dict[str, Any] = {
        "keel_request_id": repeat([e.request_id for e in entries], pa.string()),
        "keel_row": pa.array(np.concatenate([np.arange(n, dtype=np.int32) for n in counts])),
        "keel_timestamp": pa.array(
            np.repeat(np.array([e.timestamp for e in entries]) * 1e6, counts).astype("int64"),
            pa.timestamp("us", tz="UTC"),
        ),
        "keel_variant": repeat([e.variant for e in entries], pa.string()),
        "keel_model_version": repeat([e.model_version for e in entries], pa.string()),
        "keel_latency_seconds": repeat([e.latency_seconds for e in entries], pa.float64()),
        "keel_prediction": _label_array(labels),
    }
    classes = next((e.classes for e in entries if e.classes is not None), None)
    if classes is not None and all(e.proba is not None for e in entries):
        proba = np.vstack([e.proba for e in entries])  # type: ignore[misc]
        for j, label in enumerate(classes):
            meta[f"keel_proba_{label}"] = pa.array(proba[:, j], pa.float64())
    for name, array in meta.items():
        table = table.append_column(name, array)
    return table


def _feature_table(entries: Sequence[LogEntry]) -> pa.Table:
    """The features of ``entries`` as one Arrow table (matrices stacked without pandas)."""
    import numpy as np
    import pandas as pd
    import pyarrow as pa

    tables: list[pa.Table] = []
    run: list[LogEntry] = []

    def matrices() -> None:
        if run:
            # Column-major in one copy: each feature is then a contiguous row that Arrow
            # takes without copying it again.
            by_column = np.vstack([e.features for e in run]).T.copy()
            columns = run[0].columns
            tables.append(
                pa.table(
                    {
                        name: by_column[j].astype(np.int64) if kind == "int" else by_column[j]
                        for j, (name, kind) in enumerate(columns)
                    }
                )
            )
            run.clear()

    for entry in entries:
        if isinstance(entry.features, np.ndarray):
            if run and run[0].columns != entry.columns:
                matrices()
            run.append(entry)
        else:
            matrices()
            frame: pd.DataFrame = entry.features
            tables.append(pa.Table.from_pandas(frame, preserve_index=False))
    matrices()
    if len(tables) == 1:
        return tables[0]
    return pa.concat_tables(tables, promote_options="permissive")


def _label_array(labels: np.ndarray[Any, Any]) -> pa.Array:
    import pyarrow as pa

    if labels.dtype.kind in "iufb":
        return pa.array(labels)
    return pa.array([str(v) for v in labels], pa.string())


def _feedback_table(entries: Sequence[FeedbackEntry]) -> pa.Table:
    import pyarrow as pa

    return pa.table(
        {
            "keel_request_id": pa.array([e.request_id for e in entries], pa.string()),
            "keel_row": pa.array([e.row for e in entries], pa.int32()),
            "keel_timestamp": pa.array(
                [int(e.timestamp * 1e6) for e in entries], pa.timestamp("us", tz="UTC")
            ),
            "keel_label": pa.array([e.label for e in entries], pa.string()),
        }
    )


class PredictionLogReader:
    """Reads a deployment's logged predictions (and labels) over a time window."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def segments(
        self,
        deployment: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        kind: str = "predictions",
    ) -> list[Path]:
        """The segment files that may hold rows in ``[start, end)`` (hour folders pruned)."""
        folder = self.root / validate_deployment_name(deployment)
        if kind == "feedback":
            folder = folder / "feedback"
        elif kind != "predictions":
            raise InvalidArgument(f"kind must be 'predictions' or 'feedback', got {kind!r}")
        if not folder.is_dir():
            return []
        out: list[Path] = []
        for day in sorted(p for p in folder.iterdir() if p.is_dir() and p.name[:1].isdigit()):
            for hour in sorted(p for p in day.iterdir() if p.is_dir()):
                try:
                    moment = datetime.strptime(f"{day.name} {hour.name}", "%Y-%m-%d %H")
                except ValueError:
                    continue
                moment = moment.replace(tzinfo=UTC)
                if end is not None and moment >= end:
                    continue
                if start is not None and moment.timestamp() + 3600 <= start.timestamp():
                    continue
                out.extend(sorted(p for p in hour.glob("*.parquet") if not p.name.startswith(".")))
        return out

    def read(
        self,
        deployment: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        with_feedback: bool = False,
    ) -> pa.Table:
        """Logged rows with ``start <= keel_timestamp < end``, optionally with labels.

        With ``with_feedback`` each row gains ``keel_label`` (JSON text, the latest
        feedback for its request id and row; null until a label arrives).
        """
        import duckdb
        import pyarrow as pa

        files = [str(p) for p in self.segments(deployment, start, end)]
        if not files:
            return pa.table({})
        where, params = _window(start, end)
        query = f"SELECT * FROM read_parquet(?, union_by_name=true){where}"  # noqa: S608
        params = [files, *params]
        labels = [str(p) for p in self.segments(deployment, kind="feedback")]
        with duckdb.connect() as conn:
            if with_feedback and labels:
                query = (
                    f"WITH p AS ({query}), f AS (SELECT keel_request_id, keel_row, keel_label, "  # noqa: S608
                    "row_number() OVER (PARTITION BY keel_request_id, keel_row "
                    "ORDER BY keel_timestamp DESC) AS n "
                    "FROM read_parquet(?, union_by_name=true)) "
                    "SELECT p.*, f.keel_label FROM p LEFT JOIN f ON f.n = 1 "
                    "AND f.keel_request_id = p.keel_request_id "
                    "AND coalesce(f.keel_row, 0) = p.keel_row"
                )
                params.append(labels)
            result = conn.execute(query, params).arrow()
            # DuckDB >= 1.4 gives a RecordBatchReader here, older versions a Table
            table = result.read_all() if hasattr(result, "read_all") else result
        if with_feedback and "keel_label" not in table.column_names:
            table = table.append_column("keel_label", pa.nulls(len(table), pa.string()))
        return table


def _window(start: datetime | None, end: datetime | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if start is not None:
        clauses.append("keel_timestamp >= ?")
        params.append(start)
    if end is not None:
        clauses.append("keel_timestamp < ?")
        params.append(end)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params
