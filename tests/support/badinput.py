"""Shared by the bad-input tests (tests/unit/test_badinput*.py): the lab's command line run in this
process (no subprocess per case), a faked boot boundary (anything that would build or boot raises
Booted, so a test sees that a run would have started), an isolated results store and lab cache,
and a small recorded run to damage."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
from pathlib import Path

from lab.core import config

RECORDED = Path(__file__).resolve().parents[1] / "fixtures" / "runs" / "20261127T055106Z-6.12.117_deb12-amd64-f721"


class Booted(Exception):  # noqa: N818 - what it says: the input got as far as a build or a boot
    """A bench got past every check and would now build BPF programs or open its target."""


def fake_boot(monkeypatch) -> None:
    """Every way a bench or matrix starts real work raises Booted instead."""
    from lab.guest import bpfbuild
    from lab.run import labs, matrix, suites

    def boot(*a, **k):
        raise Booted()

    for mod, name in ((suites, "build_bpf"), (bpfbuild, "build_bpf"), (labs, "open_target"),
                      (matrix.Matrix, "run"), (matrix.Matrix, "prepare")):
        monkeypatch.setattr(mod, name, boot)


def isolate(monkeypatch, root: Path) -> tuple[Path, Path]:
    """LAB_RESULTS and LAB_CACHE under `root` (Paths() made from now on uses them); returns both."""
    store, cache = root / "store", root / "cache"
    store.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv("LAB_RESULTS", str(store))
    monkeypatch.setenv("LAB_CACHE", str(cache))
    monkeypatch.setenv("LAB_SSH_KNOWN_HOSTS", str(root / "known_hosts"))
    monkeypatch.setattr(config.Paths.__init__, "__defaults__", (config.ROOT, cache))
    monkeypatch.chdir(root)
    return store, cache


def cli(*argv: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `./labctl ARGV...`, in this process."""
    from lab.cli import program

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            program("./labctl").run(["labctl", *argv])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return code, out.getvalue(), err.getvalue()


def small_run(dest: Path, rows: int = 4) -> Path:
    """The recorded 6.12 run with its first `rows` rows of each suite: quick to report on."""
    dest.mkdir(parents=True)
    shutil.copy(RECORDED / "manifest.json", dest / "manifest.json")
    for f in RECORDED.glob("*.jsonl"):
        lines = f.read_text().splitlines(keepends=True)[:rows]
        (dest / f.name).write_text("".join(lines))
    return dest


def snapshot(root: Path) -> dict[str, str]:
    """Every file under root (symlinks not followed) with a digest of its bytes or link target."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            out[str(p)] = "-> " + os.readlink(p)
        elif p.is_file():
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[str(p)] = "dir"
    return out


def one_error_line(err: str) -> str:
    """The one `error:` line bad input gives (and that there is exactly one, and no traceback)."""
    assert "Traceback" not in err, err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err[-2000:]
    return lines[0]
