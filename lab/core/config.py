"""Where the lab keeps things: one cache directory for downloads, images and lab state."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "lab" / "data"  # the lab's own facts (YAML), shipped with the package


def default_cache() -> Path:
    env = os.environ.get("LAB_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "ebpf-lab"


@dataclass(frozen=True)
class Paths:
    root: Path = ROOT
    cache: Path = default_cache()

    @property
    def kernels(self) -> Path:
        return self.cache / "kernels"

    @property
    def images(self) -> Path:
        return self.cache / "images"

    @property
    def labs(self) -> Path:
        """Lab state of this checkout only: <cache>/labs/<hash of the checkout root>/<lab>. Kernels,
        images and the virtual environment stay shared; `lab.down --all` stops only this checkout's labs."""
        return self.cache / "labs" / checkout_key(self.root)

    @property
    def build(self) -> Path:
        """Host-built BPF objects and static helpers (make -C bpf)."""
        return self.root / "build"

    @property
    def results(self) -> Path:
        return Path(os.environ.get("LAB_RESULTS", self.root / "results"))


def checkout_key(root: Path) -> str:
    """A short, stable name for a checkout: 12 hex digits of the hash of its resolved path."""
    return hashlib.sha256(str(Path(root).resolve()).encode()).hexdigest()[:12]


class LabError(Exception):
    """A failure the user can act on: the message says what to do. Tasks exit with `exit_code`."""

    exit_code = 1


class InputError(LabError):
    """Bad input (a playbook, kernel name, run or option the lab cannot use), found before anything
    ran: exit 2, so a script can tell it from a run that broke (exit 1)."""

    exit_code = 2
