"""Signals that stop a long command cleanly, and the one exit code for a run stopped that way.

``train.py`` saves a checkpoint and stops (:class:`SignalFlag`, read by the training core's callback);
``generate_rationales.py`` and ``evaluate.py`` treat SIGTERM like Ctrl-C (:func:`sigterm_as_interrupt`).
Every one of them then exits with :data:`EXIT_INTERRUPTED`; rerunning the same command resumes.
"""

import contextlib
import logging
import signal
import threading
from typing import Iterable, Optional, Tuple

logger = logging.getLogger("lsrmwf")

EXIT_INTERRUPTED = 130  # 128 + SIGINT, for Ctrl-C and every other handled signal alike: saved, rerun to resume


def parse_signals(text: str, flag: str) -> Tuple[signal.Signals, ...]:
    """``"SIGTERM,SIGUSR1"`` (or ``"TERM,usr1"``) as signals; ``"none"`` or ``""`` is no signal."""
    names = [n.strip().upper() for n in (text or "").split(",") if n.strip()]
    if names == ["NONE"]:
        return ()
    out = []
    for name in names:
        name = name if name.startswith("SIG") else "SIG" + name
        sig = getattr(signal.Signals, name, None)
        if sig is None or sig in (signal.SIGKILL, signal.SIGSTOP):
            raise ValueError(f"{flag}: {name} is not a signal that can be handled (e.g. SIGTERM,SIGUSR1, or none)")
        out.append(sig)
    return tuple(out)


class SignalFlag:
    """While installed, the first of ``signals`` is recorded in :attr:`received` (nothing else happens in the
    handler: the process stops at a safe point of its own); later ones are logged and ignored, so a second
    signal never cuts short the save the first one asked for."""

    def __init__(self, signals: Iterable[signal.Signals]):
        self.signals = tuple(signals)
        self.received: Optional[str] = None
        self._previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            logger.warning("%s received: finishing this optimizer step, then saving a checkpoint and stopping", name)
        else:
            logger.warning("%s received while stopping after %s: the save finishes first", name, self.received)

    def install(self) -> "SignalFlag":
        if threading.current_thread() is threading.main_thread():  # Python handles signals in the main thread only
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def restore(self) -> None:
        """Put the previous handlers back, unless a signal was received: then this handler stays until the
        process exits, so a second signal cannot kill it while it writes its run summary and exits with
        :data:`EXIT_INTERRUPTED`."""
        if self.received is not None:
            return
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Inside, SIGTERM raises ``KeyboardInterrupt`` as Ctrl-C does, so one code path stops and saves for both."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
