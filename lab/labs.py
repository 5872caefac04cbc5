"""Labs: one running guest per kernel, each with its own state directory, port and pids."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .config import Paths
from .playbooks import VmSpec
from .runner import LocalTarget, Target


@contextlib.contextmanager
def open_target(kernel: str, vm: VmSpec, paths: Paths) -> Iterator[Target]:
    """The target for `kernel`: this machine for 'host', else a lab guest (booted if not up)."""
    if kernel == "host":
        yield LocalTarget(paths)
        return
    raise NotImplementedError("VM targets: in progress")
