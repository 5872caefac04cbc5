"""Kernel sources: the one registry of where kernels come from (SOURCES), each a way to fetch a
catalog entry into the lab cache. The catalog (images/kernels.yaml, lab/kernels/catalog.py) names
kernels by source; a --kernel value that is not in it is tried against the sources' prefixes
(`mainline:vX.Y`) and then as a path.
  debian   the newest package matching the entry's glob in a Debian suite, through the lab's private
           apt configuration (lab/kernels/debarchive.py), never installed on the host
  ubuntu   .debs supplied locally (kernels.add, LAB_KERNEL_DEBS), else an Ubuntu mainline build
           downloaded and checksum-checked (lab/kernels/mainline.py)
  host     no VM: the agent runs on this machine's own kernel (nothing to fetch)
  path     a vmlinuz/bzImage, a kernel build tree, a .deb or a directory of .debs the user gives
Adding a source: a KernelSource subclass (its every behaviour) and its instance in SOURCES, here, and
kernels using it in images/kernels.yaml.
"""

from __future__ import annotations

import fnmatch
import json
import os
import urllib.request
from dataclasses import asdict
from pathlib import Path

from lab.core.config import InputError, LabError, Paths
from lab.kernels import debarchive, mainline
from lab.kernels.tree import CatalogEntry, Kernel, cached_in, finish, from_debs, image_release, unpack


def debian_packages(entry: CatalogEntry, paths: Paths) -> tuple[debarchive.Suite, str, list[str]]:
    """(suite, newest image package name, the packages that hold its image and modules)."""
    suite = debarchive.Suite(entry.suite, paths.cache)
    names = suite.candidates(entry.package, entry.exclude)
    if not names:
        raise LabError(f"no package in Debian {entry.suite} matches {entry.package!r} for kernel {entry.alias} "
                       f"(lists in {suite.lists}; `./labctl kernels.list --refresh` re-reads the archive)")
    name = names[-1]
    split = "linux-binary-" + name.removeprefix("linux-image-")
    if suite.has(split):  # newer kernels: linux-image-* is a meta package over binary + modules
        return suite, name, [split, "linux-modules-" + name.removeprefix("linux-image-")]
    return suite, name, [name]


def fetch_debian(entry: CatalogEntry, paths: Paths, refresh: bool = False) -> Kernel:
    adir = paths.kernels / entry.alias
    have = cached_in(adir)
    if have and not refresh:
        return have[-1]
    try:
        suite, name, pkgs = debian_packages(entry, paths)
    except LabError:
        if have:
            return have[-1]
        raise
    dest = adir / name
    if (dest / "kernel.json").exists():
        return Kernel.from_json(json.loads((dest / "kernel.json").read_text()))
    print(f"kernel {entry.alias}: {name} from Debian {entry.suite}", flush=True)
    debs = [suite.download(p, paths.kernels / "debs") for p in pkgs]
    version = debs[0].name.split("_")[1].replace("%3a", ":")
    unpack(debs, dest)
    return finish(entry.alias, dest, f"Debian {entry.suite} package {name} {version}",
                   {"package": name, "version": version, "suite": entry.suite, "debs": " ".join(pkgs)})


def supplied_dir(alias: str, paths: Paths) -> Path:
    return paths.kernels / alias / "supplied"


def _probe_url(url: str, timeout: float = 4.0) -> str:
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
        return "reachable"
    except Exception as e:  # noqa: BLE001 - any failure means "cannot download"
        return f"{type(e).__name__}: {getattr(e, 'reason', e)}"


def ubuntu_version(entry: CatalogEntry) -> str:
    """What names an Ubuntu kernel's packages for a cache key: its mainline directory (v6.2)."""
    return entry.mainline or entry.url.rstrip("/").removesuffix("/amd64").rsplit("/", 1)[-1] or entry.alias


def mainline_entry(name: str) -> CatalogEntry:
    """`mainline:vX.Y[.Z]`: any Ubuntu mainline build, downloaded like the catalog's 6.2."""
    version = mainline.check_version(name.removeprefix("mainline:"))
    return CatalogEntry(alias=f"mainline-{version}", source="ubuntu", mainline=version,
                        description=f"Ubuntu mainline build {version}", packages=mainline.WANTED,
                        url=mainline.dir_url(version))


def fetch_ubuntu(entry: CatalogEntry, paths: Paths) -> Kernel:
    sdir = supplied_dir(entry.alias, paths)
    env_dir = os.environ.get("LAB_KERNEL_DEBS")
    for d in ([Path(env_dir)] if env_dir else []) + [sdir]:
        debs = sorted(p for p in d.glob("*.deb") if any(fnmatch.fnmatch(p.name, g) for g in entry.packages))
        if debs:
            return from_debs(entry.alias, debs, paths, f"Ubuntu .debs supplied in {d}")
    have = [k for k in cached_in(paths.kernels / entry.alias)]
    if have:
        return have[-1]
    status = "no URL"
    if entry.mainline:
        url = mainline.dir_url(entry.mainline)
        status = _probe_url(url + "CHECKSUMS")
        if status == "reachable":
            print(f"kernel {entry.alias}: Ubuntu mainline {entry.mainline} from {url}", flush=True)
            with mainline.fetched(entry.mainline, paths.kernels / "debs" / "mainline") as debs:
                return from_debs(entry.alias, debs, paths, f"Ubuntu mainline {entry.mainline} ({url})")
        entry = CatalogEntry(**{**asdict(entry), "url": url})
    elif entry.url:
        status = _probe_url(entry.url)
    why = ("it cannot be downloaded on this machine (" + status + ")" if status != "reachable"
           else "this lab does not download Ubuntu kernels itself")
    raise LabError(
        f"kernel {entry.alias} ({entry.description}) is not in the lab cache and {why}.\n"
        f"Supply it: get the .deb files ({', '.join(entry.packages)}) from {entry.url or 'Ubuntu'} "
        f"on a machine that can, then either\n"
        f"  ./labctl kernels.add {entry.alias} --deb A.deb --deb B.deb   (copies them into {sdir})\n"
        f"  or pass --kernel PATH/TO/DIR-OF-DEBS, or set LAB_KERNEL_DEBS=DIR")


def from_path(spec: str, paths: Paths) -> Kernel:
    p = Path(spec).expanduser().resolve()
    if p.is_file() and p.suffix == ".deb":
        return from_debs("local", [p], paths, "local .deb")
    if p.is_dir() and list(p.glob("*.deb")):
        return from_debs("local", sorted(p.glob("*.deb")), paths, f"local .debs in {p}")
    if p.is_dir() and (p / "arch/x86/boot/bzImage").exists():
        img = p / "arch/x86/boot/bzImage"
        rel = image_release(img)
        return Kernel("local", rel, img, None, f"kernel build tree {p}", {})
    if p.is_file():
        rel = image_release(p)
        mods = None
        for cand in (p.parent / "lib/modules" / rel, p.parent.parent / "lib/modules" / rel):
            if cand.is_dir():
                mods = cand
        return Kernel("local", rel, p, mods, f"kernel image {p}", {})
    raise InputError(f"{spec} is not a kernel: give a vmlinuz/bzImage, a kernel build tree, a .deb or a "
                   "directory of .debs")




class KernelSource:
    """One place where kernels come from, and every behaviour of it: how a catalog entry of it
    becomes a Kernel, what `kernels.list` says it offers now, its CI cache key, whether kernels.add
    takes supplied packages for it, and an optional --kernel prefix naming one of its kernels
    outside the catalog. Add a source: a subclass here and its instance in SOURCES."""

    name = ""
    what = ""
    prefix = ""  # a --kernel prefix for kernels outside the catalog ("" for none)
    boots = True  # False: nothing to boot (the host's own kernel)
    takes_supplied = False  # kernels.add copies .debs for its entries

    def fetch(self, entry: CatalogEntry, paths: Paths, refresh: bool = False) -> Kernel:
        raise InputError(f"kernel {entry.alias!r} ({self.what}) has nothing to boot: use it with bench.*")

    def entry_for(self, name: str) -> CatalogEntry:
        raise InputError(f"the {self.name} source names no kernel outside the catalog")

    def listing(self, entry: CatalogEntry, paths: Paths, offline: bool, refresh: bool) -> tuple[list[str], dict]:
        """(lines for `kernels.list` after the entry's own, fields for its --json item)."""
        return [], {}

    def not_cached(self, entry: CatalogEntry) -> str:
        """What `kernels.list` says of an entry with nothing in the cache ("" to say nothing)."""
        return ""

    def cache_key(self, entry: CatalogEntry, paths: Paths) -> tuple[str, str] | None:
        """(what names the kernel's packages, its folder under the cache) for CI caches; None: no kernel."""
        return None


class DebianSource(KernelSource):
    name, what = "debian", "a Debian package, from Debian's archive"

    def fetch(self, entry: CatalogEntry, paths: Paths, refresh: bool = False) -> Kernel:
        return fetch_debian(entry, paths, refresh)

    def listing(self, entry: CatalogEntry, paths: Paths, offline: bool, refresh: bool) -> tuple[list[str], dict]:
        offer = "(not read: --offline)"
        item: dict = {"suite": entry.suite, "package": entry.package, "offered": None}
        if not offline:
            try:
                if refresh:
                    debarchive.Suite(entry.suite, paths.cache).update(force=True)
                suite, name, pkgs = debian_packages(entry, paths)
                version = suite.version(pkgs[0])
                offer = f"{name} {version}" + (f" (as {', '.join(pkgs)})" if pkgs != [name] else "")
                item["offered"] = {"package": name, "version": version, "packages": pkgs}
            except LabError as err:
                offer = f"unavailable: {err}"
                item["offered_error"] = str(err)
        return [f"Debian {entry.suite}: {entry.package}", f"offered now: {offer}"], item

    def not_cached(self, entry: CatalogEntry) -> str:
        return "not cached (fetched on first use)"

    def cache_key(self, entry: CatalogEntry, paths: Paths) -> tuple[str, str] | None:
        suite, name, pkgs = debian_packages(entry, paths)
        return f"{name}_{suite.version(pkgs[0])}", f"kernels/{entry.alias}/{name}"


class UbuntuSource(KernelSource):
    name, what = "ubuntu", "an Ubuntu kernel: supplied .debs or a mainline build"
    prefix = "mainline:"
    takes_supplied = True

    def fetch(self, entry: CatalogEntry, paths: Paths, refresh: bool = False) -> Kernel:
        return fetch_ubuntu(entry, paths)

    def entry_for(self, name: str) -> CatalogEntry:
        return mainline_entry(name)

    def listing(self, entry: CatalogEntry, paths: Paths, offline: bool, refresh: bool) -> tuple[list[str], dict]:
        return ([f"from: {', '.join(entry.packages)}"], {"packages": list(entry.packages)}) if entry.packages \
            else ([], {})

    def not_cached(self, entry: CatalogEntry) -> str:
        return f"not cached (supply .debs: ./labctl kernels.add {entry.alias} --deb FILE ...)"

    def cache_key(self, entry: CatalogEntry, paths: Paths) -> tuple[str, str] | None:
        return ubuntu_version(entry), f"kernels/{entry.alias}"


class HostSource(KernelSource):
    name, what = "host", "this machine's own kernel (no VM)"
    boots = False


SOURCES: dict[str, KernelSource] = {s.name: s for s in (DebianSource(), UbuntuSource(), HostSource())}


def check(source: str, alias: str) -> None:
    if source not in SOURCES:
        raise InputError(f"kernel {alias!r} in the catalog has source {source!r}: known sources are "
                         f"{', '.join(SOURCES)} (lab/kernels/sources.py)")
