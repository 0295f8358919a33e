"""Read ahead: fetch the next page while the pipeline is still processing this one.

A paged pull otherwise alternates between waiting on the provider and working on what it sent; with the next
request in flight, the provider's time and ours overlap. Pages still arrive in order and at most ``depth`` are
held in memory. The producer runs the whole page iterator, so a client's state (tokens, counters, its rate-limit
governor) is never touched by the consumer's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(pages: Iterator[T], depth: int = 1) -> Iterator[T]:
    """Yield what ``pages`` yields, fetching up to ``depth`` items ahead in a background thread.

    An exception raised while fetching is re-raised here, in order, after the pages before it. Closing this
    generator early stops the producer after the page it is fetching.
    """
    handoff: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        handoff.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            handoff.put(_DONE)
        except BaseException as error:  # noqa: BLE001 -- handed to the consumer, which re-raises it
            handoff.put(_Failed(error))
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while producer.is_alive():
            try:  # unblock a producer waiting to hand over a page nobody will read
                handoff.get_nowait()
            except queue.Empty:
                producer.join(timeout=0.1)
