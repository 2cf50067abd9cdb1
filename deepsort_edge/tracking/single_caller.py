"""One caller at a time: a guard that fails at once, rather than waits, when a second thread enters.
"""

from __future__ import annotations

import threading

__all__ = ["SingleCaller", "tracker_guard"]


class SingleCaller:
    """``with guard:`` holds the guard's lock, or raises ``RuntimeError`` at once if another thread holds it.

    Not a lock to wait on: two threads updating one tracker is a bug in the
    caller (frames would interleave), so the second call fails loudly. A
    class rather than a generator context manager: it runs every frame.

    Args:
        owner: names the guarded object in the error.
        advice: what to do instead, appended to the error.
    """

    __slots__ = ("_lock", "_message")

    def __init__(self, owner: str, advice: str) -> None:
        self._lock = threading.Lock()
        self._message = f"{owner} is already being updated from another thread; {advice}"

    def __enter__(self) -> None:
        if not self._lock.acquire(blocking=False):
            raise RuntimeError(self._message)

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def tracker_guard(tracker: object) -> SingleCaller:
    """The guard of one ``DeepSORTTracker``: its update calls may not overlap."""
    return SingleCaller(
        f"DeepSORTTracker at {id(tracker):#x}", "a tracker holds one stream's state: use one tracker per thread (or a lock)"
    )
