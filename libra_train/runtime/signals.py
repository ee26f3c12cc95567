"""How a run ends when its job is stopped."""

from __future__ import annotations


def exit_cleanly_on_sigterm() -> None:
    """A preempted or cancelled job gets SIGTERM: unwind as on an error, so the tracker flushes what it
    buffered (W&B's offline writer holds it in memory) and the run lock is released."""
    import signal
    import threading

    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)
