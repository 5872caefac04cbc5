"""SIGINT / SIGTERM / SIGHUP during a run: the first one raises Interrupted where the main thread
is (so every `finally` on the way out runs: the agent is stopped, a VM this run booted is stopped,
the manifest is marked), except inside a `deferred()` section (a row or manifest being written),
where it is raised as soon as the section ends. Further signals only say that the run is already
stopping: one Ctrl-C is enough, and a second one cannot cut the clean-up short.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(BaseException):  # noqa: N818 - not an error: the user asked the run to stop
    """A signal asked the run to stop. BaseException: `except Exception` must not swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(f"received {signal.Signals(signum).name}")

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    received: int | None = None
    pending: int | None = None
    deferred: int = 0


_state = _State()


def received() -> int | None:
    """The signal that stopped this run, if one did."""
    return _state.received


def _handler(signum: int, frame) -> None:
    if _state.received is not None:
        sys.stderr.write(f"\n{signal.Signals(signum).name}: the run is already stopping (cleaning up, "
                         "within seconds)\n")
        return
    _state.received = signum
    sys.stderr.write(f"\n{signal.Signals(signum).name} received: stopping the run (agent, VM), keeping its rows\n")
    if _state.deferred:
        _state.pending = signum
        return
    raise Interrupted(signum)


@contextlib.contextmanager
def handling() -> Iterator[None]:
    """Turn SIGINT/SIGTERM/SIGHUP into Interrupted for the duration (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.getsignal(s) for s in SIGNALS}
    _state.received = _state.pending = None
    _state.deferred = 0
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A section a signal must not cut in half (writing a row, the manifest): it is raised after."""
    _state.deferred += 1
    try:
        yield
    finally:
        _state.deferred -= 1
        if not _state.deferred and _state.pending is not None:
            signum, _state.pending = _state.pending, None
            raise Interrupted(signum)


def check() -> None:
    """Raise Interrupted if a signal arrived while deferred (for loops that poll)."""
    if _state.pending is not None and not _state.deferred:
        signum, _state.pending = _state.pending, None
        raise Interrupted(signum)
