"""The user's pushed tools (playbook `suites.tools.user_tools: {NAME: {push: PATH}}`, `--tool
NAME=push:PATH`): copied into build/bpf/usertools/NAME/ before a tools run, pushed to a guest with
the newer tool builds (lab/guest/bundle.py), found there by the agent (lab/agent/tools/user.py,
which checks the shared libraries with the target's own ld.so --list)."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Any

from lab.agent.tools import user as usertool
from lab.core.config import INSTALLED, ROOT, InputError, Paths


def push_dir(paths: Paths) -> Path:
    return paths.build / "bpf" / usertool.PUSH_DIR


def source(path: str) -> Path:
    """A push path: absolute, or relative to the checkout (a playbook's paths are the checkout's); for an
    installed lab, which has no checkout, relative to the current directory."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (Path.cwd() if INSTALLED else ROOT) / p


def _listing(root: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file under root (copy2 keeps the mtime), empty if none."""
    if not root.is_dir():
        return []
    return sorted((str(p.relative_to(root)), p.lstat().st_size, int(p.lstat().st_mtime))
                  for p in root.rglob("*") if not p.is_dir())


def prepare(params: dict[str, Any], paths: Paths | None = None, log=print) -> list[str]:
    """Copy every pushed tool into build/bpf/usertools/NAME/ (built apart, then swapped in under a
    lock, so nothing of an earlier run travels and the matrix's jobs never see it half made);
    returns the names copied."""
    paths = paths or Paths()
    dest = push_dir(paths)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    done = []
    try:
        for name, spec in (params.get("user_tools") or {}).items():
            spec = usertool.normalize(spec)
            if not spec.get("push"):
                continue
            src = source(spec["push"])
            if not src.exists():
                raise InputError(f"user tool {name}: push path {src} does not exist")
            if src.is_dir() and not spec.get("exec"):
                raise InputError(f"user tool {name}: {src} is a directory: say which executable in it runs "
                                 "({push: DIR, exec: bin/tool})")
            if src.is_dir():
                shutil.copytree(src, tmp / name, symlinks=True)
            else:
                (tmp / name).mkdir(parents=True)
                shutil.copy2(src, tmp / name / src.name)
            log(f"user tool {name}: {src} pushed with the agent ({usertool.PUSH_DIR}/{name}/)")
            done.append(name)
        with open(dest.parent / ".usertools.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _listing(dest) != _listing(tmp):  # another job of the matrix made the same already
                shutil.rmtree(dest, ignore_errors=True)
                if done:
                    tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return done
