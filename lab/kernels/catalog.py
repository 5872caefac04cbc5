"""The kernel catalog: aliases (images/kernels.yaml) resolved to a bootable vmlinuz + modules.

Debian kernels are fetched with `apt-get download` through the lab's private apt configuration
(lab/kernels/debarchive.py: one per Debian suite, under the cache) and unpacked into the lab cache with
`dpkg-deb -x` (never installed on the host). Both package layouts are handled: a
`linux-image-*` package holding boot/vmlinuz-* (up to Debian 13), and the split one of newer
kernels (a `linux-image-*` meta package over `linux-binary-*`, whose image is
usr/lib/modules/<release>/vmlinuz, and `linux-modules-*`). Ubuntu mainline builds (the talk's 6.2,
`mainline:vX.Y`) are downloaded from Ubuntu's mainline archive when it is reachable
(lab/kernels/mainline.py), else taken from locally supplied .deb files. A path names a kernel the user
built.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import shutil
import struct
import subprocess
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from lab.core.config import ROOT, InputError, LabError, Paths
from lab.kernels import debarchive

CATALOG_FILE = ROOT / "images" / "kernels.yaml"


@dataclass(frozen=True)
class CatalogEntry:
    alias: str
    source: str  # debian | ubuntu | host
    description: str = ""
    suite: str = "bookworm"  # the Debian suite a `debian` kernel comes from
    package: str = ""
    packages: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()  # package globs that `package` must not pick (rt, cloud flavours)
    url: str = ""
    mainline: str = ""  # an Ubuntu mainline version (v6.2) the lab downloads (lab/kernels/mainline.py)


@dataclass(frozen=True)
class Kernel:
    """A kernel ready to boot: its image, its modules, and where it came from."""

    alias: str
    release: str  # uname -r
    vmlinuz: Path
    modules: Path | None  # .../lib/modules/<release>, or None for a kernel with everything built in
    source: str  # human-readable provenance (package and version, or path)
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["vmlinuz"] = str(self.vmlinuz)
        d["modules"] = str(self.modules) if self.modules else None
        return d

    @classmethod
    def from_json(cls, d: dict) -> Kernel:
        return cls(alias=d["alias"], release=d["release"], vmlinuz=Path(d["vmlinuz"]),
                   modules=Path(d["modules"]) if d.get("modules") else None, source=d["source"],
                   extra=d.get("extra", {}))


def catalog() -> tuple[str, dict[str, CatalogEntry]]:
    """(default alias, entries) from images/kernels.yaml."""
    data = yaml.safe_load(CATALOG_FILE.read_text())
    entries = {}
    for alias, spec in data["kernels"].items():
        spec = dict(spec)
        spec["packages"] = tuple(spec.get("packages", ()))
        spec["exclude"] = tuple(spec.get("exclude", ()))
        entries[str(alias)] = CatalogEntry(alias=str(alias), **spec)
    return str(data["default"]), entries


def image_release(vmlinuz: Path) -> str:
    """The kernel release string from an x86 bzImage's setup header (as `file` prints it)."""
    with vmlinuz.open("rb") as f:
        head = f.read(0x4000)
    if len(head) < 0x210 or head[0x202:0x206] != b"HdrS":
        raise LabError(f"{vmlinuz} is not an x86 bzImage (no setup header)")
    (off,) = struct.unpack_from("<H", head, 0x20E)
    f_off = off + 0x200
    raw = head[f_off:f_off + 256] if f_off < len(head) else b""
    if not raw:
        with vmlinuz.open("rb") as f:
            f.seek(f_off)
            raw = f.read(256)
    return raw.split(b"\0", 1)[0].decode(errors="replace").split(" ", 1)[0]


_natural = debarchive.natural


def _images(root: Path) -> dict[str, Path]:
    """release -> kernel image in an unpacked tree, in either Debian layout."""
    found = {p.name.removeprefix("vmlinuz-"): p for p in (root / "boot").glob("vmlinuz-*")}
    for sub in ("usr/lib/modules", "lib/modules"):  # the split layout: linux-binary-* packages
        found.update({p.parent.name: p for p in (root / sub).glob("*/vmlinuz")})
    return found


def _unpack(debs: list[Path], dest: Path) -> None:
    """Unpack .debs into dest (via dest.tmp, removed on every path). Each must be a Debian package
    and together they must hold a kernel image, else a LabError and nothing is left in the cache."""
    tmp = dest.with_name(dest.name + ".tmp")
    made = [d for d in (dest.parent, *dest.parent.parents) if not d.exists()]  # removed again if left empty
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
        for deb in debs:
            proc = subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], capture_output=True, text=True)
            if proc.returncode != 0:
                why = proc.stderr.strip().splitlines()[-1:] or [f"dpkg-deb exited {proc.returncode}"]
                raise LabError(f"{deb} is not a Debian package that can be unpacked: {why[0]}")
        if not _images(tmp):
            raise LabError(f"{', '.join(d.name for d in debs)} hold no kernel image (no boot/vmlinuz-* or "
                           "usr/lib/modules/*/vmlinuz): supply the linux-image-* package (for newer Debian "
                           "kernels linux-binary-* with linux-modules-*), not only the modules")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for d in made:  # innermost first
            with contextlib.suppress(OSError):
                d.rmdir()


def _finish(alias: str, root: Path, source: str, extra: dict[str, str]) -> Kernel:
    """Find vmlinuz and modules in an unpacked tree, run depmod, record kernel.json."""
    found = _images(root)
    if not found:
        raise LabError(f"no boot/vmlinuz-* or usr/lib/modules/*/vmlinuz in {root}: the .deb files given hold "
                       "no kernel image (supply the linux-image-* package, or for newer Debian kernels "
                       "linux-binary-* with linux-modules-*, not only the modules)")
    release = sorted(found, key=_natural)[-1]
    vmlinuz = found[release]
    moddir = None
    for cand in (root / "lib" / "modules" / release, root / "usr" / "lib" / "modules" / release):
        if cand.is_dir():
            moddir = cand
            break
    if moddir is not None:
        base = moddir.parent.parent.parent
        proc = subprocess.run(["depmod", "-a", "-b", str(base), release], capture_output=True, text=True)
        if proc.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise LabError(f"depmod failed on the modules of {release} in {root} (removed): "
                           f"{proc.stderr.strip()[-300:]}")
    k = Kernel(alias=alias, release=release, vmlinuz=vmlinuz, modules=moddir, source=source, extra=extra)
    (root / "kernel.json").write_text(json.dumps(k.to_json(), indent=2) + "\n")
    return k


def _cached(root: Path) -> list[Kernel]:
    found = []
    for meta in sorted(root.glob("*/kernel.json"), key=lambda p: _natural(p.parent.name)):
        found.append(Kernel.from_json(json.loads(meta.read_text())))
    return found


def cached(paths: Paths) -> dict[str, list[Kernel]]:
    out: dict[str, list[Kernel]] = {}
    if paths.kernels.is_dir():
        for d in sorted(paths.kernels.iterdir()):
            if d.is_dir() and d.name != "debs":
                ks = _cached(d)
                if ks:
                    out[d.name] = ks
    return out


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
    have = _cached(adir)
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
    _unpack(debs, dest)
    return _finish(entry.alias, dest, f"Debian {entry.suite} package {name} {version}",
                   {"package": name, "version": version, "suite": entry.suite, "debs": " ".join(pkgs)})


def supplied_dir(alias: str, paths: Paths) -> Path:
    return paths.kernels / alias / "supplied"


def _from_debs(alias: str, debs: list[Path], paths: Paths, origin: str) -> Kernel:
    key = "-".join(sorted(d.name for d in debs))
    dest = paths.kernels / alias / re.sub(r"[^A-Za-z0-9.+_-]", "_", key)[:120]
    if (dest / "kernel.json").exists():
        return Kernel.from_json(json.loads((dest / "kernel.json").read_text()))
    print(f"kernel {alias}: unpacking {', '.join(d.name for d in debs)}", flush=True)
    _unpack(debs, dest)
    return _finish(alias, dest, f"{origin}: {', '.join(d.name for d in debs)}", {})


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
    from lab.kernels import mainline

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
            return _from_debs(entry.alias, debs, paths, f"Ubuntu .debs supplied in {d}")
    have = [k for k in _cached(paths.kernels / entry.alias)]
    if have:
        return have[-1]
    status = "no URL"
    if entry.mainline:
        from lab.kernels import mainline

        url = mainline.dir_url(entry.mainline)
        status = _probe_url(url + "CHECKSUMS")
        if status == "reachable":
            print(f"kernel {entry.alias}: Ubuntu mainline {entry.mainline} from {url}", flush=True)
            with mainline.fetched(entry.mainline, paths.kernels / "debs" / "mainline") as debs:
                return _from_debs(entry.alias, debs, paths, f"Ubuntu mainline {entry.mainline} ({url})")
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
        return _from_debs("local", [p], paths, "local .deb")
    if p.is_dir() and list(p.glob("*.deb")):
        return _from_debs("local", sorted(p.glob("*.deb")), paths, f"local .debs in {p}")
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


def resolve(name: str, paths: Paths | None = None, refresh: bool = False) -> Kernel:
    """Resolve a --kernel value to a bootable kernel, fetching it into the cache if needed."""
    paths = paths or Paths()
    _, entries = catalog()
    if name in entries:
        entry = entries[name]
        if entry.source == "debian":
            return fetch_debian(entry, paths, refresh)
        if entry.source == "ubuntu":
            return fetch_ubuntu(entry, paths)
        raise InputError(f"kernel {name!r} is the host's own kernel: it has no VM to boot (use it with bench.*)")
    if name.startswith("mainline:"):
        return fetch_ubuntu(mainline_entry(name), paths)
    if "/" in name or name.endswith(".deb") or Path(name).exists():
        return from_path(name, paths)
    known = "\n".join(f"  {a:6s} {e.source:7s} {e.description}" for a, e in entries.items())
    raise InputError(f"unknown kernel {name!r}. Known kernels:\n{known}\nor give a path to a vmlinuz, a "
                   "kernel build tree, a .deb or a directory of .debs")


def add_supplied(alias: str, files: list[str], paths: Paths | None = None) -> Path:
    paths = paths or Paths()
    _, entries = catalog()
    if alias not in entries or entries[alias].source != "ubuntu":
        debs_only = [a for a, e in entries.items() if e.source == "ubuntu"]
        raise LabError(f"kernels.add is for kernels supplied as .debs: {', '.join(debs_only)}")
    d = supplied_dir(alias, paths)
    d.mkdir(parents=True, exist_ok=True)
    for f in files:
        src = Path(f)
        if src.suffix != ".deb" or not src.is_file():
            raise LabError(f"{f} is not a .deb file")
        shutil.copy2(src, d / src.name)
    return d
