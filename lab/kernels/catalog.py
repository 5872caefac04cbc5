"""The kernel catalog: aliases (images/kernels.yaml) resolved to a bootable vmlinuz + modules.

Debian kernels are fetched with `apt-get download` through the lab's private apt configuration
(lab/kernels/debarchive.py: one per Debian suite, under the cache) and unpacked into the lab cache with
`dpkg-deb -x` (never installed on the host). Both package layouts are handled: a
`linux-image-*` package holding boot/vmlinuz-* (up to Debian 13), and the split one of newer
kernels (a `linux-image-*` meta package over `linux-binary-*`, whose image is
usr/lib/modules/<release>/vmlinuz, and `linux-modules-*`). Ubuntu mainline builds (the talk's 6.2,
`mainline:vX.Y`) are downloaded from Ubuntu's mainline archive when it is reachable
(lab/kernels/mainline.py), else taken from locally supplied .deb files. A path names a kernel the user
built. Where kernels come from is lab/kernels/sources.py; the cached trees, lab/kernels/tree.py.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from lab.core.config import ROOT, InputError, LabError, Paths
from lab.kernels import sources
from lab.kernels.sources import debian_packages, fetch_debian, supplied_dir, ubuntu_version  # noqa: F401 (callers')
from lab.kernels.tree import CatalogEntry, Kernel, cached_in  # noqa: F401 (callers')

CATALOG_FILE = ROOT / "images" / "kernels.yaml"


def catalog() -> tuple[str, dict[str, CatalogEntry]]:
    """(default alias, entries) from images/kernels.yaml."""
    data = yaml.safe_load(CATALOG_FILE.read_text())
    entries = {}
    for alias, spec in data["kernels"].items():
        spec = dict(spec)
        spec["packages"] = tuple(spec.get("packages", ()))
        spec["exclude"] = tuple(spec.get("exclude", ()))
        sources.check(str(spec.get("source")), str(alias))
        entries[str(alias)] = CatalogEntry(alias=str(alias), **spec)
    return str(data["default"]), entries


def cached(paths: Paths) -> dict[str, list[Kernel]]:
    out: dict[str, list[Kernel]] = {}
    if paths.kernels.is_dir():
        for d in sorted(paths.kernels.iterdir()):
            if d.is_dir() and d.name != "debs":
                ks = cached_in(d)
                if ks:
                    out[d.name] = ks
    return out


def resolve(name: str, paths: Paths | None = None, refresh: bool = False) -> Kernel:
    """Resolve a --kernel value to a bootable kernel, fetching it into the cache if needed."""
    paths = paths or Paths()
    _, entries = catalog()
    if name in entries:
        entry = entries[name]
        return sources.SOURCES[entry.source].fetch(entry, paths, refresh)
    for source in sources.SOURCES.values():
        if source.prefix and name.startswith(source.prefix):
            return source.fetch(source.entry_for(name), paths, refresh)
    if "/" in name or name.endswith(".deb") or Path(name).exists():
        return sources.from_path(name, paths)
    known = "\n".join(f"  {a:6s} {e.source:7s} {e.description}" for a, e in entries.items())
    raise InputError(f"unknown kernel {name!r}. Known kernels:\n{known}\nor give a path to a vmlinuz, a "
                   "kernel build tree, a .deb or a directory of .debs")


def add_supplied(alias: str, files: list[str], paths: Paths | None = None) -> Path:
    paths = paths or Paths()
    _, entries = catalog()
    if alias not in entries or not sources.SOURCES[entries[alias].source].takes_supplied:
        debs_only = [a for a, e in entries.items() if sources.SOURCES[e.source].takes_supplied]
        raise LabError(f"kernels.add is for kernels supplied as .debs: {', '.join(debs_only)}")
    d = supplied_dir(alias, paths)
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        src = Path(f)
        if src.suffix != ".deb" or not src.is_file():
            raise LabError(f"{f} is not a .deb file")
        shutil.copy2(src, d / src.name)
    return d
