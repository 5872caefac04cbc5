"""Building the lab's wheel offline from a copy of the checkout's sources (tests of the package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CAN_BUILD = "import setuptools, wheel; assert int(setuptools.__version__.split('.')[0]) >= 61"


def builder() -> str:
    """An interpreter that builds without the network: this venv's, else Debian's python3 with
    python3-setuptools and python3-wheel (the venv has setuptools but not wheel)."""
    for py in (sys.executable, "/usr/bin/python3"):
        if subprocess.run([py, "-c", CAN_BUILD], capture_output=True).returncode == 0 and \
                subprocess.run([py, "-m", "pip", "--version"], capture_output=True).returncode == 0:
            return py
    pytest.skip("no interpreter with pip, setuptools>=61 and wheel to build offline (apt-get install python3-pip)")


def build_wheel(tmp_path: Path, git: bool) -> Path:
    """The wheel of a copy of the checkout's sources (building writes build/ and *.egg-info beside
    them); with git, the copy is a one-commit repository so the wheel records that commit."""
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for d in ("lab", "bpf", "images", "playbooks"):
        shutil.copytree(ROOT / d, src / d, ignore=skip)
    for f in ("pyproject.toml", "setup.py"):
        shutil.copy(ROOT / f, src)
    if git:
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@t", GIT_COMMITTER_NAME="t",
                   GIT_COMMITTER_EMAIL="t@t")
        for cmd in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "wheel source"]):
            subprocess.run(["git", "-C", str(src), *cmd], check=True, env=env, capture_output=True)
    proc = subprocess.run([builder(), "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(src),
                           "-w", str(tmp_path / "dist")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    (whl,) = (tmp_path / "dist").glob("ebpf_overhead_lab-*.whl")
    return whl


