"""How a run ends when it is stopped: Ctrl-C (SIGINT) and SIGTERM (preemption, `docker stop`, `scancel`)
end the same way. The signal becomes an `Interrupted` exception, so the run unwinds as on an error
(the tracker flushes what it buffered, the run lock is released), records where it stopped, says how to
resume, and exits with 128 + the signal's number (130 for SIGINT, 143 for SIGTERM)."""

from __future__ import annotations

import signal
import threading


class Interrupted(SystemExit):
    def __init__(self, signum: int):
        super().__init__(128 + signum)
        self.signal = signal.Signals(signum).name


def stop_on_signals() -> None:
    """Both signals raise Interrupted in the main thread. A second Ctrl-C while the run unwinds gets
    Python's own KeyboardInterrupt: a user who presses it twice means it."""

    def stop(signum, _frame):
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise Interrupted(signum)

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop)


def stop_behind(err: BaseException) -> Interrupted | None:
    """The stop an error hides, if any. A signal that lands inside a library's half-done update can make
    that library's own cleanup fail (OmegaConf does), so the error that reaches the run is the library's,
    with the Interrupted only in its context: the run must still end as stopped."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, Interrupted):
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None
