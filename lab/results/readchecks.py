"""Checks on what the store reads back: a manifest's fields of the wrong type or of another
version, and symlinks out of a run's directory (lab/results/store.py turns each into a Problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Manifest fields whose type readers rely on; a field of another type is a problem and is not used.
MANIFEST_TYPES: dict[str, Any] = {
    "run_id": str, "time": str, "playbook": str, "playbook_name": str, "lab_version": str, "suites": dict,
    "status": str, "status_reason": str, "kernel_alias": str, "kernel_release": str, "kernel_source": str,
    "accelerator": str, "accelerator_why": str, "accelerator_reason": str, "host_cpu_model": str,
    "host_cpus": int, "host_kernel": str, "guest": dict, "outcome": dict, "suite_outcome": dict,
    "icount_overrides": dict, "host_load_start": list, "host_load_end": list, "seconds": (int, float),
    "estimate": dict,
}
BY_SUITE = ("suites", "outcome", "suite_outcome", "icount_overrides")  # suite -> a mapping


def check_manifest(manifest: dict[str, Any], version: int) -> tuple[dict[str, Any], list[str]]:
    """The manifest with fields of a wrong type left out, and what is wrong with each; a manifest of
    another version is not used at all (its fields may mean something else)."""
    got = manifest.get("manifest_version", version)
    if got != version:
        return {}, [f"manifest_version {got!r}: this lab reads version {version} (a newer lab wrote it? read it "
                    "with that lab); its fields are not used"]
    problems = []
    out = {}
    for k, v in manifest.items():
        typ = MANIFEST_TYPES.get(k)
        if v is not None and typ is not None and (isinstance(v, bool) or not isinstance(v, typ)):
            problems.append(f"manifest field {k!r} is {type(v).__name__}, not "
                            f"{getattr(typ, '__name__', 'a number')}: not used")
            continue
        if k in BY_SUITE and isinstance(v, dict) and not all(isinstance(x, dict | None) for x in v.values()):
            problems.append(f"manifest field {k!r} does not map suites to mappings: not used")
            continue
        out[k] = v
    return out, problems


def outside(f: Path, run_dir: Path) -> bool:
    """A symlink whose target is not in the run's directory (the lab never makes one)."""
    return f.is_symlink() and not f.resolve().is_relative_to(run_dir.resolve())
