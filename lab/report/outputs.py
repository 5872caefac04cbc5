"""Where a report writes, and never over what it did not write.

A report is made in a staging directory inside its output directory, then each file is renamed
into place (a rename replaces a symlink itself, never the file it points to). `.report-outputs.json`
in the output directory lists the files the report wrote, each with its SHA-256: a later report
there replaces those files (as long as nobody changed them) and removes the ones it no longer
makes. Any other file of the same name is refused (OutputRefused), and nothing is written.
Reports written before the list existed are recognised inside the result store only: there, in a
run's directory, report.html, report.md, claims.json and *.png are the report's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from lab.core.config import InputError

MARKER = ".report-outputs.json"
LEGACY = ("report.html", "report.md", "claims.json")


class OutputRefused(InputError):
    """The output directory holds a file of a name the report writes that the report did not write."""


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded(out_dir: Path) -> dict[str, str]:
    """name -> SHA-256 of the files an earlier report wrote here (empty when none or unreadable)."""
    try:
        data = json.loads((out_dir / MARKER).read_text())
        files = data.get("files") if isinstance(data, dict) else None
        return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}
    except (OSError, ValueError):
        return {}


def _ours(target: Path, name: str, mine: dict[str, str], legacy: bool) -> bool:
    if target.is_symlink() or not target.is_file():
        return False
    if name in mine:
        try:
            return digest(target) == mine[name]
        except OSError:
            return False
    return legacy and (name in LEGACY or name.endswith(".png"))


def write(out_dir: Path, make: Callable[[Path], Path], legacy: bool = False) -> Path:
    """Run `make(staging_dir)` (which writes the report's files there and returns its main file),
    then move every file it made into out_dir; returns the main file's place in out_dir. `legacy`:
    out_dir is a run directory in the store, where report files without a list are the report's."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputRefused(f"report output {out_dir} is a file, not a directory: give a directory with -o")
    out_dir.mkdir(parents=True, exist_ok=True)
    if not legacy and (out_dir / "manifest.json").exists() and not (out_dir / MARKER).exists():
        legacy = True  # a run's directory given with -o: its earlier report files are the report's
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=out_dir))
    try:
        main = make(stage)
        made = sorted(p.name for p in stage.iterdir() if p.is_file())
        mine = recorded(out_dir)
        theirs = [n for n in made if os.path.lexists(out_dir / n) and not _ours(out_dir / n, n, mine, legacy)]
        if theirs:
            raise OutputRefused(f"report output {out_dir}: {', '.join(theirs)} already there and not written by a "
                                f"report (none listed in {MARKER}): nothing was written; choose an empty or new "
                                "directory with -o, or move those files away")
        files = {}
        for n in made:
            files[n] = digest(stage / n)
            os.replace(stage / n, out_dir / n)
        for n, sha in mine.items():  # what an earlier report made and this one does not
            old = out_dir / n
            if n not in files and "/" not in n and _ours(old, n, {n: sha}, False):
                old.unlink()
        tmp = out_dir / f"{MARKER}.{os.getpid()}"
        tmp.write_text(json.dumps({"files": files}, indent=1, sort_keys=True) + "\n")
        os.replace(tmp, out_dir / MARKER)
        return out_dir / main.name
    finally:
        shutil.rmtree(stage, ignore_errors=True)
