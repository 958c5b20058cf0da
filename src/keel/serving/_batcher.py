"""Adaptive micro-batching: concurrent requests share one ``predict`` call.

A request that finds the model idle is predicted at once, so a lone client never waits
for company (p50 at concurrency 1 is unchanged). While a batch runs on the predict
thread, newly decoded requests queue up and go together in the next call, up to
``max_batch_rows``. The only deliberate wait is bounded by ``max_wait`` (2 ms by
default) and happens only when other requests have already arrived and are being
decoded, so waiting can only add rows, never idle time. If a batch fails, each of its
requests is retried alone so that one bad request cannot fail its neighbours.

When the server holds no other request at all (``in_flight`` is 1, also after every
request that arrived with it has started), a small request is predicted on the event
loop itself: with nobody to batch with, the two thread hand-offs to the predict thread
and back would be all the batcher adds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from keel.serving._decode import Decoded
from keel.serving._model import Prediction, ServedModel

__all__ = ["MicroBatcher"]


@dataclass
class _Item:
    model: ServedModel
    decoded: Decoded
    future: asyncio.Future[Prediction]


class MicroBatcher:
    """Groups requests for a variant's model into batches run on one predict thread."""

    def __init__(
        self,
        *,
        max_batch_rows: int = 1024,
        max_wait: float = 0.002,
        arriving: Callable[[], int] = lambda: 0,
        in_flight: Callable[[], int] | None = None,
        inline_rows: int = 32,
        on_batch: Callable[[int, int], None] | None = None,
        name: str = "predict",
    ) -> None:
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait
        self.inline_rows = inline_rows
        self._arriving = arriving
        self._in_flight = in_flight
        self._on_batch = on_batch
        self._queue: deque[_Item] = deque()
        self._rows = 0
        self._busy = False
        self._added: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"keel-{name}")

    async def submit(self, model: ServedModel, decoded: Decoded) -> Prediction:
        """The prediction for ``decoded``, computed in some batch with ``model``."""
        if self._alone(decoded):
            # Requests that arrived with this one start first; if it is still alone, no
            # batch can form and it is predicted here.
            await asyncio.sleep(0)
            if self._alone(decoded):
                (result,) = model.predict_many([decoded])
                if self._on_batch is not None:
                    self._on_batch(1, decoded.rows)
                return result
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.append(_Item(model, decoded, future))
        self._rows += decoded.rows
        if self._added is not None:
            self._added.set()
        if not self._busy:
            self._busy = True
            self._task = loop.create_task(self._drain())
        return await future

    def _alone(self, decoded: Decoded) -> bool:
        return (
            self._in_flight is not None
            and not self._busy
            and not self._queue
            and decoded.rows <= self.inline_rows
            and self._in_flight() <= 1
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                await self._gather(loop)
                batch = self._take()
                await self._run(loop, batch)
        finally:
            self._busy = False

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wait (at most ``max_wait``) for requests that are already being decoded."""
        if self.max_wait <= 0:
            return
        deadline = loop.time() + self.max_wait
        while self._rows < self.max_batch_rows and self._arriving() > 0:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._added = asyncio.Event()
            try:
                await asyncio.wait_for(self._added.wait(), remaining)
            except TimeoutError:
                return
            finally:
                self._added = None

    def _take(self) -> list[_Item]:
        """The next batch: leading requests for the same model, up to the row cap."""
        first = self._queue.popleft()
        batch, rows = [first], first.decoded.rows
        while self._queue:
            item = self._queue[0]
            if item.model is not first.model or rows + item.decoded.rows > self.max_batch_rows:
                break
            batch.append(self._queue.popleft())
            rows += item.decoded.rows
        self._rows -= rows
        return batch

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list[_Item]) -> None:
        model = batch[0].model
        decodes = [i.decoded for i in batch]
        try:
            results = await loop.run_in_executor(self._executor, model.predict_many, decodes)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0].future, error=error)
                return
            for item in batch:  # isolate the failing request(s)
                await self._run(loop, [item])
            return
        if self._on_batch is not None:
            self._on_batch(len(batch), sum(d.rows for d in decodes))
        for item, result in zip(batch, results, strict=True):
            _settle(item.future, result=result)


def _settle(
    future: asyncio.Future[Prediction],
    *,
    result: Prediction | None = None,
    error: BaseException | None = None,
) -> None:
    if future.done():  # the client went away and the handler was cancelled
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]
