"""One run at a time on a lab: a run holds <cache>/run-locks/<checkout>/<lab>.lock (fcntl.flock,
released when the process ends, however it ends) from before it builds anything until it is done.

A second bench on the same lab (the same kernel's guest, the host target, or one ssh:// machine)
from the same checkout waits for the first to end, saying so in one line, then runs: two runs on
one lab would share its vCPUs and spoil both measurements, and the first stops the VM it booted
when it ends, under the second. Waiting (rather than refusing) lets a script or a matrix's
repetitions of one kernel start runs together and still get each one whole. Ctrl-C gives up.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from lab.core.config import Paths, checkout_key


def lock_path(name: str, paths: Paths) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:80] or "lab"
    return paths.cache / "run-locks" / checkout_key(paths.root) / f"{safe}.lock"


def holder(path: Path) -> str:
    """Who holds the lock, in words (what the holder wrote into it)."""
    try:
        d = json.loads(path.read_text())
        since = time.strftime("%H:%M:%S", time.localtime(float(d["since"])))
        est = f", {d['estimate']}" if d.get("estimate") else ""
        return f"pid {d['pid']} ({d.get('what', 'a run')}, since {since}{est})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another run"


@contextlib.contextmanager
def held(name: str, paths: Paths, what: str, estimate: str = "", log: Callable[[str], None] = print) -> Iterator[None]:
    path = lock_path(name, paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"lab {name} is in use by another run of this checkout, {holder(path)}: waiting for it to end "
                "(two runs on one lab would spoil both; Ctrl-C to give up) ...")
            fcntl.flock(fd, fcntl.LOCK_EX)
            log(f"lab {name}: the other run ended; starting")
        os.ftruncate(fd, 0)
        me = {"pid": os.getpid(), "what": what, "since": time.time(), "estimate": estimate}
        os.write(fd, json.dumps(me).encode())
        yield
    finally:
        os.close(fd)
