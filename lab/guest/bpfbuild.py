"""Builds the BPF objects and static helpers on the host (make -C bpf), once per change."""

from __future__ import annotations

import subprocess

from lab.core.config import LabError, Paths


def build_bpf(paths: Paths | None = None, quiet: bool = True) -> None:
    paths = paths or Paths()
    out = paths.build / "bpf"
    cmd = ["make", "-s", "-C", str(paths.root / "bpf"), f"OUT={out}", f"-j{2}"]
    proc = subprocess.run(cmd, capture_output=quiet, text=True)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "")[-3000:] if quiet else ""
        raise LabError(f"building the BPF programs failed ({' '.join(cmd)}):\n{detail}")
