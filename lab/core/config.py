"""Where the lab keeps things: its source tree (BPF sources, image recipes, playbooks), one cache
directory for downloads, images and lab state, and the result store.

Two layouts run the same code:
- a checkout: `ROOT` is the checkout (it holds `bpf/`, `images/`, `playbooks/` beside `lab/`); builds
  go to `ROOT/build`, results to `ROOT/results`;
- an installed wheel (`pip install .`): those three folders travel as package data in `lab/tree/`
  (setup.py copies them at build time), so `ROOT` is that folder; builds go to the cache (the package
  may be read-only), results to `$LAB_RESULTS`, else `./results` when the current directory is a
  checkout, else the user's data directory (`$XDG_DATA_HOME/ebpf-lab/results`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1]  # the `lab` package
IMPORT_ROOT = PACKAGE.parent  # the directory `lab` is imported from (checkout, or site-packages)
TREE_FOLDERS = ("bpf", "images", "playbooks")  # what the lab reads besides its Python package
BUILD_INFO = PACKAGE / "_build_info.json"  # written into a wheel at build time: the commit it came from


def is_checkout(d: Path) -> bool:
    """A checkout of the lab: its package and the source folders side by side."""
    return (d / "lab" / "__init__.py").is_file() and all((d / f).is_dir() for f in TREE_FOLDERS)


INSTALLED = not is_checkout(IMPORT_ROOT)
ROOT = PACKAGE / "tree" if INSTALLED else IMPORT_ROOT
DATA = PACKAGE / "data"  # the lab's own facts (YAML), shipped with the package


def source_commit() -> str:
    """The commit the running lab comes from: `git describe --always --dirty` of a checkout, or what
    the wheel recorded when it was built; "unknown" with the reason otherwise."""
    if INSTALLED:
        try:
            return str(json.loads(BUILD_INFO.read_text())["commit"])
        except (OSError, ValueError, KeyError):
            return "unknown (built outside a git checkout)"
    try:
        return subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"


def default_results() -> Path:
    env = os.environ.get("LAB_RESULTS")
    if env:
        return Path(env)
    if not INSTALLED:
        return ROOT / "results"
    cwd = Path.cwd()
    if is_checkout(cwd):
        return cwd / "results"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "ebpf-lab" / "results"


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
        """Host-built BPF objects and static helpers (make -C bpf): in the checkout, or for an installed
        wheel in the cache, one folder per source tree."""
        if self.root == ROOT and INSTALLED:
            return self.cache / "build" / tree_key(self.root / "bpf")
        return self.root / "build"

    @property
    def results(self) -> Path:
        return default_results() if self.root == ROOT else Path(os.environ.get("LAB_RESULTS", self.root / "results"))


@functools.cache
def tree_key(tree: Path) -> str:
    """12 hex digits of the hash of a source folder's files (names and bytes): installs of the same
    sources share one build. Once per process: an installed package's sources do not change under it,
    and every `Paths.build` asks."""
    h = hashlib.sha256()
    for f in sorted(p for p in tree.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(tree)).encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


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
