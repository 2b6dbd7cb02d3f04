"""A step-indexed iterator that produces items ahead of the consumer on a background thread.

`produce(step)` runs on one daemon thread for steps start, start+1, ... and its results wait in
a bounded queue (depth `prefetch`), so host-side decoding and the host->device copy overlap the
train step instead of stalling it. Items come out in step order because there is one producer.

An exception in `produce` is re-raised in the consumer at the step where it happened (the
original exception object, with its traceback). `close()` (or leaving a `with` block, or
dropping the iterator) stops the thread. The thread holds no reference to the iterator, so an
abandoned iterator is garbage collected and its thread stops on its own.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

_POLL_S = 0.1     # how often a blocked producer/consumer rechecks for shutdown
_JOIN_S = 10.0    # how long close() waits for a producer that is mid-`produce`


class _Raised:
    """Queue entry carrying the producer's exception to the consumer."""

    def __init__(self, error: BaseException):
        self.error = error


class PrefetchIterator:
    """Iterator over produce(start), produce(start + 1), ...; `prefetch=0` produces inline, no thread."""

    def __init__(self, produce: Callable[[int], Any], start_step: int, prefetch: int = 2):
        self._produce = produce
        self._step = start_step
        self._closed = False
        self._thread = None
        if prefetch > 0:
            self._queue = queue.Queue(maxsize=prefetch)
            self._stop = threading.Event()
            self._thread = threading.Thread(target=_produce_loop, args=(produce, start_step, self._queue, self._stop),
                                            name="gigajax-prefetch", daemon=True)
            self._thread.start()

    @property
    def step(self) -> int:
        """The step of the item the next `next()` returns."""
        return self._step

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed:
            raise StopIteration
        if self._thread is None:
            item = self._produce(self._step)
        else:
            item = self._get()
            if isinstance(item, _Raised):
                self.close()
                raise item.error
        self._step += 1
        return item

    def _get(self):
        while True:
            try:
                return self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self.close()
                    raise RuntimeError("gigajax prefetch thread exited without producing an item") from None

    def close(self) -> None:
        """Stop the producer thread and drop prefetched items; later `next()` calls raise StopIteration."""
        if self._closed:
            return
        self._closed = True
        if self._thread is not None:
            self._stop.set()
            _drain(self._queue)  # unblocks a producer waiting on a full queue
            self._thread.join(_JOIN_S)
            _drain(self._queue)  # frees device buffers of an item put while we joined

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: module globals may already be gone
            pass


def _produce_loop(produce, step: int, q: queue.Queue, stop: threading.Event) -> None:
    """Thread body. Deliberately a free function: holding `self` would keep the iterator alive forever."""
    while not stop.is_set():
        try:
            item = produce(step)
        except BaseException as e:  # noqa: BLE001 - the consumer decides; we only carry it over
            _put(q, _Raised(e), stop)
            return
        if not _put(q, item, stop):
            return
        step += 1


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Blocking put that gives up (returns False) once `stop` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=_POLL_S)
            return True
        except queue.Full:
            pass
    return False


def _drain(q: queue.Queue) -> None:
    while True:
        try:
            q.get_nowait()
        except queue.Empty:
            return
