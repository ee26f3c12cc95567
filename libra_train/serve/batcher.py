"""Dynamic batching: concurrent requests' records are gathered into one label-mode forward pass.

The first record to arrive opens a batch; the batch closes when it holds max_batch_size records or
max_wait_ms has passed since it opened, whichever is first. One worker thread runs the model, so the
event loop keeps accepting requests while a batch is scored, and the records that arrive meanwhile
make the next batch. A batch whose scoring raises fails its own records only (WorkerError) and the
worker goes on with the next one.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)


class WorkerError(RuntimeError):
    """The model worker failed on the batch this record was in."""


class DynamicBatcher:
    def __init__(self, score_batch, max_batch_size: int, max_wait_ms: float, on_batch=None):
        if max_batch_size < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_size must be ≥ 1 and max_wait_ms ≥ 0")
        self.score_batch, self.max_batch_size = score_batch, max_batch_size
        self.max_wait_s = max_wait_ms / 1000
        self.on_batch = on_batch or (lambda size: None)  # metrics: the batch's size
        self.queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="guard-worker")

    async def start(self) -> None:
        self.queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """After the server has finished its requests in flight (uvicorn drains them first)."""
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._executor.shutdown(wait=True)

    def depth(self) -> int:
        return self.queue.qsize() if self.queue else 0

    async def submit(self, records: list) -> list:
        """Score records (one request's) among whatever else is queued; results in the same order."""
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in records]
        for record, future in zip(records, futures):
            self.queue.put_nowait((record, future))
        return list(await asyncio.gather(*futures))

    async def _gather_batch(self) -> list:
        batch = [await self.queue.get()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while len(batch) < self.max_batch_size:
            if not self.queue.empty():
                batch.append(self.queue.get_nowait())
                continue
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self.queue.get(), left))
            except asyncio.TimeoutError:
                break
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._gather_batch()
            batch = [(record, future) for record, future in batch if not future.cancelled()]  # client gone
            if not batch:
                continue
            self.on_batch(len(batch))
            try:
                results = await loop.run_in_executor(self._executor, self.score_batch, [r for r, _ in batch])
            except Exception as err:  # one failed batch fails its own requests, not the server
                log.exception("guard worker failed on a batch of %d", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(WorkerError(f"{type(err).__name__}: {err}"))
                continue
            for (_, future), result in zip(batch, results):
                if not future.done():
                    future.set_result(result)
