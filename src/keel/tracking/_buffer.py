"""Buffered metric logging: callers append to memory, a background thread writes batches.

``add`` costs an append; a daemon thread drains the queue every ``interval`` seconds,
or as soon as ``high_water`` points wait, and writes them in one transaction. ``flush``
drains in the caller's thread and returns only when everything queued before it is
committed, so a point is durable once ``flush`` has returned for it. When the queue
grows past ``hard_limit`` (the store is slower than the caller), ``add`` writes in the
caller's thread: memory stays bounded and nothing is dropped.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence

from keel.errors import KeelError, NotFound, Unavailable
from keel.stores.metadata import MetricRow

log = logging.getLogger(__name__)


class MetricWriter:
    """A queue of metric points and the thread that writes it to the store."""

    def __init__(
        self,
        write: Callable[[Sequence[MetricRow]], None],
        *,
        interval: float = 0.5,
        high_water: int = 100_000,
    ) -> None:
        self._write = write
        self._interval = interval
        self._high_water = high_water
        self._hard_limit = high_water * 10
        self._queue: deque[MetricRow] = deque()
        self._write_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def add(self, row: MetricRow) -> None:
        """Queue one point; the hot path of ``log_metric``."""
        queue = self._queue
        queue.append(row)
        if len(queue) >= self._high_water:
            self._after_high_water()

    def extend(self, rows: Sequence[MetricRow]) -> None:
        """Queue many points at once."""
        self._queue.extend(rows)
        if len(self._queue) >= self._high_water:
            self._after_high_water()

    def _after_high_water(self) -> None:
        if len(self._queue) >= self._hard_limit:
            self.flush()
        else:
            self._ensure_thread()
            self._wake.set()

    def pending(self) -> int:
        return len(self._queue)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._loop, name="keel-metric-writer", daemon=True
            )
            self._thread.start()

    def start(self) -> None:
        """Start the background thread (idempotent)."""
        self._ensure_thread()

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain()
            except Exception as exc:  # kept, and raised once by the next flush()
                log.warning("background metric write failed: %s", exc)
                if self._error is None or isinstance(self._error, Unavailable):
                    self._error = exc

    def _drain(self) -> None:
        """Write what is queued now; raise what went wrong (points kept when transient)."""
        with self._write_lock:
            queue = self._queue
            count = len(queue)
            if not count:
                return
            popleft = queue.popleft
            batch = [popleft() for _ in range(count)]
            try:
                self._write(batch)
            except NotFound as exc:
                # Points for runs that do not exist are refused; the others are written.
                missing = set(exc.details.get("run_ids", ()))
                kept = [row for row in batch if row[0] not in missing]
                if kept and len(kept) < len(batch):
                    try:
                        self._write(kept)
                    except Unavailable:
                        queue.extendleft(reversed(kept))
                        raise
                raise
            except Unavailable:
                # Transient (a locked or unreachable database): put the points back, in order.
                queue.extendleft(reversed(batch))
                raise

    def flush(self) -> None:
        """Write everything queued so far; raise a write failure not yet reported, once."""
        earlier, self._error = self._error, None
        self._drain()
        if earlier is not None and not isinstance(earlier, Unavailable):
            if isinstance(earlier, KeelError):
                raise earlier
            raise Unavailable(f"a background metric write failed: {earlier}") from earlier

    def close(self) -> None:
        """Flush and stop the thread."""
        try:
            self.flush()
        finally:
            self._closed = True
            self._wake.set()
            if self._thread is not None and self._thread is not threading.current_thread():
                self._thread.join(timeout=5)
