"""A kernel in the lab cache: what a source fetched, unpacked and ready to boot (Kernel), and the
catalog's entry naming it (CatalogEntry). Unpacking Debian packages (either layout: boot/vmlinuz-*
up to Debian 13, usr/lib/modules/<release>/vmlinuz in the split linux-binary-* packages after), depmod,
kernel.json, and reading a bzImage's release. Used by lab/kernels/sources.py and catalog.py."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import struct
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.core.config import LabError, Paths
from lab.kernels import debarchive


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


def images_in(root: Path) -> dict[str, Path]:
    """release -> kernel image in an unpacked tree, in either Debian layout."""
    found = {p.name.removeprefix("vmlinuz-"): p for p in (root / "boot").glob("vmlinuz-*")}
    for sub in ("usr/lib/modules", "lib/modules"):  # the split layout: linux-binary-* packages
        found.update({p.parent.name: p for p in (root / sub).glob("*/vmlinuz")})
    return found


def unpack(debs: list[Path], dest: Path) -> None:
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
        if not images_in(tmp):
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


def finish(alias: str, root: Path, source: str, extra: dict[str, str]) -> Kernel:
    """Find vmlinuz and modules in an unpacked tree, run depmod, record kernel.json."""
    found = images_in(root)
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


def cached_in(root: Path) -> list[Kernel]:
    found = []
    for meta in sorted(root.glob("*/kernel.json"), key=lambda p: _natural(p.parent.name)):
        found.append(Kernel.from_json(json.loads(meta.read_text())))
    return found




def from_debs(alias: str, debs: list[Path], paths: Paths, origin: str) -> Kernel:
    """A kernel from .deb files, unpacked once into the cache under a key of their names."""
    key = "-".join(sorted(d.name for d in debs))
    dest = paths.kernels / alias / re.sub(r"[^A-Za-z0-9.+_-]", "_", key)[:120]
    if (dest / "kernel.json").exists():
        return Kernel.from_json(json.loads((dest / "kernel.json").read_text()))
    print(f"kernel {alias}: unpacking {', '.join(d.name for d in debs)}", flush=True)
    unpack(debs, dest)
    return finish(alias, dest, f"{origin}: {', '.join(d.name for d in debs)}", {})
