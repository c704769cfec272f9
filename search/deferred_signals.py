"""Hold back Ctrl-C and SIGTERM for the length of a short block that must not be cut in two.

``study.ask()`` writes the new RUNNING trial to the storage before it returns the trial: an
interrupt between the two leaves a RUNNING trial that no worker owns (nothing can mark it FAIL,
and the next run waits for it as if another worker held it). Inside :func:`interrupts_deferred`
the signal is only noted; it is raised again, with the previous handlers back, when the block ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

DEFERRED = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """SIGINT / SIGTERM arriving inside the block are delivered as it ends (in arrival order).
    Only the main thread may set handlers; elsewhere the block runs unguarded."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    # a handler installed from C (getsignal() is None) cannot be put back from Python: leave it be
    previous = {s: signal.signal(s, note) for s in DEFERRED if signal.getsignal(s) is not None}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in caught:
            signal.raise_signal(signum)  # the previous handler decides, as if it had come now
