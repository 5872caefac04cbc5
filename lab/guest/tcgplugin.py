"""The event-count TCG plugin (bpf/qemu/eventcount.c): built on the host with gcc against the QEMU
the lab runs, cached by the hash of its sources, and loaded into icount guests with `-plugin`.

Debian 12's QEMU 7.2 exports the plugin API (version 1) but ships no qemu-plugin.h; the plugin
declares the few functions it calls by hand. So the build checks that the QEMU binary exports every
`qemu_plugin_*` symbol the plugin leaves undefined (nm -D), and the plugin checks at load that QEMU
offers API version 1. The manifest records the plugin's hash, its API version and QEMU's version.

Guest programs mark their windows with bpf/helpers/evmark.h; the plugin appends one line per window
to the lab's `events.log` (lab/results/events.py reads it).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from lab.core.config import ROOT, LabError

API_VERSION = 1
SOURCES = ("qemu/eventcount.c", "helpers/evmark.h")  # under bpf/
QEMU = "qemu-system-x86_64"
ENV = "LAB_EVENTS"  # on | off: load the plugin into icount guests (default: DEFAULT)
DEFAULT = "on"  # measured: 1.19x the wall time of icount alone, counts repeat across boots (findings)


@dataclass(frozen=True)
class Plugin:
    path: str  # the built shared object
    sha256: str  # of its sources (the cache key)
    api_version: int
    qemu_version: str
    log: str = ""  # where this lab's plugin writes its windows

    def qemu_opts(self, log: Path) -> str:
        return f"-plugin {self.path},out={log}"

    def manifest(self) -> dict[str, object]:
        d = asdict(self)
        d.pop("path")
        return d


def wanted(accelerator: str, env: dict[str, str] | None = None) -> bool:
    """Does a guest of `accelerator` run under the plugin? Only icount (under KVM there is no TCG;
    plain TCG decides nothing); LAB_EVENTS=off turns it off."""
    setting = (env if env is not None else os.environ).get(ENV, DEFAULT).strip().lower()
    if setting not in ("on", "off"):
        raise LabError(f"{ENV}={setting!r}: use on or off")
    return accelerator == "icount" and setting == "on"


def source_hash(root: Path = ROOT) -> str:
    h = hashlib.sha256()
    for rel in SOURCES:
        h.update(rel.encode() + b"\0" + (root / "bpf" / rel).read_bytes())
    return h.hexdigest()


def qemu_version(qemu: str = QEMU) -> str:
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, check=False).stdout
    return (out.splitlines() or ["unknown"])[0]


def exported(binary: str) -> set[str]:
    """The dynamic symbols `binary` defines (nm -D --defined-only)."""
    out = subprocess.run(["nm", "-D", "--defined-only", binary], capture_output=True, text=True, check=False)
    return {ln.split()[-1].split("@")[0] for ln in out.stdout.splitlines() if ln.split()}


def needed(so: Path) -> set[str]:
    out = subprocess.run(["nm", "-D", "--undefined-only", str(so)], capture_output=True, text=True, check=False)
    return {s for s in (ln.split()[-1].split("@")[0] for ln in out.stdout.splitlines() if ln.split())
            if s.startswith("qemu_plugin_")}


def build(cache: Path, root: Path = ROOT, qemu: str = QEMU) -> Plugin:
    """The plugin built into `cache`/build/tcgplugin/<hash>.so (once per source hash), checked against
    the QEMU binary. Raises LabError saying what is missing."""
    digest = source_hash(root)
    out = cache / "build" / "tcgplugin" / f"eventcount-{digest[:16]}.so"
    qbin = shutil.which(qemu)
    if qbin is None:
        raise LabError(f"{qemu} not found: the event-count plugin needs it (Debian package qemu-system-x86)")
    if not out.exists():
        if shutil.which("gcc") is None:
            raise LabError("gcc not found: the event-count plugin is built with it (Debian package gcc)")
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(f".tmp{os.getpid()}")
        proc = subprocess.run(["gcc", "-O2", "-Wall", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(tmp),
                               str(root / "bpf" / SOURCES[0])], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tmp.unlink(missing_ok=True)
            raise LabError(f"building the event-count plugin failed: {proc.stderr.strip()[-600:]}")
        tmp.rename(out)
    missing = sorted(needed(out) - exported(qbin))
    if missing:
        raise LabError(f"{qbin} does not export {', '.join(missing)}: it was built without TCG plugins or offers "
                       f"another plugin API than version {API_VERSION}; LAB_EVENTS=off runs without the plugin")
    return Plugin(str(out), digest, API_VERSION, qemu_version(qbin))


def classifier(cache: Path, root: Path = ROOT) -> Path:
    """The plugin's opcode classifier as a host program (EVC_TEST): `prog HEX...` prints each
    instruction's classes. For tests."""
    digest = source_hash(root)
    out = cache / "build" / "tcgplugin" / f"classify-{digest[:16]}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-DEVC_TEST", "-o", str(out), str(root / "bpf" / SOURCES[0])],
                       check=True, capture_output=True)
    return out
