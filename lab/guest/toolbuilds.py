"""Newer builds of the six tools, for kernels newer than the image's own libbpf-tools.

The guest root is Debian 12 (bookworm): its libbpf-tools (0.26) predates kernels such as 6.12,
where cachestat's kprobe on account_page_dirtied no longer exists. Debian 13 (trixie) and unstable
ship newer libbpf-tools, but their binaries (libbpf linked in statically, libelf, zlib and glibc as
shared libraries) need glibc >= 2.38 and bookworm has 2.36. So each newer build is extracted here,
on the host, with its own shared libraries and dynamic loader, from that suite's .debs (read through
the lab's private apt configuration, lab/kernels/debarchive.py, under $LAB_CACHE/apt/<suite>/; nothing is
installed on the host or in the image), into build/bpf/toolbuilds/<suite>/:

  bin/<tool>       the six tools (Debian 13+ names them <tool>-libbpf)
  lib/             every shared object they load, each from the suite's package (ld.so --list checks
                   that nothing is resolved outside this directory), and the suite's ld-linux
  build.json       package, version, suite, where each library came from

It travels to the guest in a second tarball, only when the tools suite runs there (lab/guest/bundle.py);
the agent runs a tool as
`lib/ld-linux-x86-64.so.2 --inhibit-cache --library-path lib --argv0 TOOL bin/TOOL`, so the bookworm
root's own glibc is never involved (lab/agent/tools/builds.py picks the build per tool and kernel).
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.agent.tools.builds import CHOICES, NEWER
from lab.agent.tools.registry import TOOLS
from lab.core.config import InputError, LabError, Paths
from lab.kernels.debarchive import Suite

PACKAGE = "libbpf-tools"
LOADER = "ld-linux-x86-64.so.2"
LIB_DIRS = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")


@dataclass(frozen=True)
class ToolBuild:
    suite: str
    version: str
    dir: Path

    @property
    def label(self) -> str:
        return f"{PACKAGE} {self.version} ({self.suite})"


def builds_dir(paths: Paths) -> Path:
    return paths.build / "bpf" / "toolbuilds"


def wanted(choice: str) -> tuple[str, ...]:
    """The newer builds a run with playbook `tool_build: choice` needs on the host."""
    if choice not in CHOICES:
        raise InputError(f"tool_build {choice!r} is not one of {', '.join(CHOICES)}")
    if choice == "auto":
        return NEWER
    return (choice,) if choice in NEWER else ()


def _resolved(loader: Path, libpath: str, binary: Path) -> dict[str, str]:
    """soname -> path the suite's own loader resolves for `binary` (ld.so --list)."""
    proc = subprocess.run([str(loader), "--inhibit-cache", "--library-path", libpath, "--list", str(binary)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"{loader} --list {binary.name} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
    out: dict[str, str] = {}
    for ln in proc.stdout.splitlines():
        if "=>" not in ln:
            continue  # linux-vdso
        name, rest = (s.strip() for s in ln.split("=>", 1))
        out[Path(name).name] = rest.rsplit(" (", 1)[0].strip()
    return out


def extract(suite: Suite, version: str, dest: Path, tools: tuple[str, ...] = tuple(TOOLS), log=print) -> None:
    """Download `libbpf-tools` and its library closure from `suite` and lay out `dest` (see above)."""
    debs_dir = suite.dir / "debs"
    packages = suite.closure(PACKAGE)
    log(f"tool build {suite.name}: {PACKAGE} {version} with {', '.join(p for p in packages if p != PACKAGE)}")
    debs = {p: suite.download(p, debs_dir) for p in packages}
    versions = {p: r.get("Version", "?") for p, r in suite.show(packages).items()}
    with tempfile.TemporaryDirectory(prefix="toolbuild-") as tmpname:
        tmp = Path(tmpname).resolve()
        roots: dict[str, Path] = {}
        for p, deb in debs.items():
            roots[p] = tmp / p
            subprocess.run(["dpkg-deb", "-x", str(deb), str(roots[p])], check=True)
        libdirs = [r / d for r in roots.values() for d in LIB_DIRS if (r / d).is_dir()]
        loaders = [d / LOADER for d in libdirs if (d / LOADER).is_file()]
        if not loaders:
            raise LabError(f"Debian {suite.name}: no {LOADER} in {', '.join(packages)}")
        loader = loaders[0]
        libpath = ":".join(str(d) for d in libdirs)
        owner = {str(d): p for p in roots for d in libdirs if d.is_relative_to(roots[p])}
        sbin = roots[PACKAGE] / "usr/sbin"
        (dest / "bin").mkdir(parents=True)
        (dest / "lib").mkdir()
        libs: dict[str, str] = {}
        names: dict[str, str] = {}
        for tool in tools:
            binary = next((b for b in (sbin / f"{tool}-libbpf", sbin / tool) if b.is_file()), None)
            if binary is None:
                raise LabError(f"{PACKAGE} {version} ({suite.name}) has no {tool} in /usr/sbin")
            for soname, path in _resolved(loader, libpath, binary).items():
                where = next((o for d, o in owner.items() if path.startswith(d + "/")), None)
                if where is None:
                    raise LabError(f"{binary.name} of {PACKAGE} {version} ({suite.name}) needs {soname}, "
                                   f"found only outside the suite's packages ({path})")
                real = Path(path).resolve()
                if not real.is_relative_to(tmp):
                    raise LabError(f"{soname} of Debian {suite.name}'s {where} points outside it ({real})")
                if soname not in libs:
                    shutil.copyfile(real, dest / "lib" / soname)
                    libs[soname] = f"{where} {versions[where]}"
            shutil.copyfile(binary, dest / "bin" / tool)
            names[tool] = binary.name
        for f in [*(dest / "bin").iterdir(), dest / "lib" / LOADER]:
            f.chmod(0o755)
    for tool in tools:  # it runs: the build's own loader and libraries, nothing of this host's
        proc = subprocess.run(command(dest, tool) + ["--help"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise LabError(f"{tool} of {PACKAGE} {version} ({suite.name}) does not start with its own "
                           f"libraries: {(proc.stderr or proc.stdout).strip()[-300:]}")
    meta = {"package": PACKAGE, "version": version, "suite": suite.name, "tools": names, "libs": libs,
            "loader": f"lib/{LOADER}"}
    (dest / "build.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def command(dest: Path, tool: str) -> list[str]:
    """How a tool of an extracted build is started (the agent's tools/builds.py Bundled builds the same)."""
    lib = dest / "lib"
    return [str(lib / LOADER), "--inhibit-cache", "--library-path", str(lib), "--argv0", tool, str(dest / "bin" / tool)]


def prepare_one(name: str, paths: Paths, log=print) -> ToolBuild:
    """The newer build `name` (a Debian suite), extracted if missing or older than the archive's."""
    suite = Suite(name, paths.cache)
    suite.update()
    version = suite.version(PACKAGE)
    if version is None:
        raise LabError(f"Debian {name} has no {PACKAGE}")
    dest = builds_dir(paths) / name
    meta = _meta(dest)
    if meta.get("version") == version and set(meta.get("tools", {})) >= set(TOOLS):
        return ToolBuild(name, version, dest)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        extract(suite, version, tmp, log=log)
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ToolBuild(name, version, dest)


def _meta(dest: Path) -> dict[str, Any]:
    try:
        return json.loads((dest / "build.json").read_text())
    except (OSError, ValueError):
        return {}


def prepare(params: dict[str, Any], paths: Paths | None = None, log=print) -> list[ToolBuild]:
    """The newer builds the tools suite's parameters ask for, ready in build/bpf/toolbuilds/.
    With `tool_build: auto` (the default) a build that cannot be had (archive unreachable) is
    reported and left out: the tools run with the image's own build and say so; a build named
    explicitly must be had."""
    paths = paths or Paths()
    choice = str(params.get("tool_build", "auto"))
    out: list[ToolBuild] = []
    builds_dir(paths).mkdir(parents=True, exist_ok=True)
    with open(builds_dir(paths) / ".lock", "w") as lock:  # matrix entries prepare at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        for name in wanted(choice):
            try:
                out.append(prepare_one(name, paths, log))
            except LabError as e:
                if choice != "auto":
                    raise
                earlier = _meta(builds_dir(paths) / name).get("version")
                if earlier:
                    log(f"warning: tool build {name}: {e}; using the one extracted earlier ({earlier})")
                    out.append(ToolBuild(name, earlier, builds_dir(paths) / name))
                else:
                    log(f"warning: tool build {name} left out: {e}")
    for b in out:
        log(f"tool build {b.suite}: {b.label} in {b.dir}")
    return out
