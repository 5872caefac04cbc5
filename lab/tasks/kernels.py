"""kernels.*: the kernel catalog (images/kernels.yaml) and the kernel cache."""

from invoke import Exit, task

from lab import kernels
from lab.config import LabError, Paths


@task(name="list")
def list_(c):
    """Kernel aliases, where each comes from, and what is already cached."""
    default, entries = kernels.catalog()
    have = kernels.cached(Paths())
    for alias, e in entries.items():
        mark = " (default)" if alias == default else ""
        print(f"{alias:6s} {e.source:7s} {e.description}{mark}")
        src = e.package or ", ".join(e.packages) or ""
        if src:
            print(f"{'':15s}from: {src}")
        for k in have.get(alias, []):
            print(f"{'':15s}cached: {k.release}  [{k.source}]  {k.vmlinuz}")
        if e.source in ("debian", "ubuntu") and not have.get(alias):
            print(f"{'':15s}not cached" + (" (supply .debs: ./labctl kernels.add 6.2 --deb FILE ...)"
                                            if e.source == "ubuntu" else " (fetched on first use)"))
    print("\nAny other --kernel value is a path: a vmlinuz/bzImage, a kernel build tree, a .deb or a dir of .debs.")


@task(help={"kernel": "alias or path", "refresh": "pick the newest package even if one is cached"})
def fetch(c, kernel="6.12", refresh=False):
    """Fetch and unpack a kernel into the cache (done automatically by lab.up)."""
    try:
        k = kernels.resolve(kernel, refresh=refresh)
    except LabError as e:
        raise Exit(f"error: {e}", code=1) from None
    print(f"{k.alias}: {k.release}  {k.source}\n  image   {k.vmlinuz}\n  modules {k.modules}")


@task(positional=["alias"], iterable=["deb"], help={"deb": "a .deb file (repeat for each)"})
def add(c, alias, deb=None):
    """Supply a kernel that cannot be downloaded here: ./labctl kernels.add 6.2 --deb A.deb --deb B.deb"""
    try:
        d = kernels.add_supplied(alias, deb or [])
        k = kernels.resolve(alias)
    except LabError as e:
        raise Exit(f"error: {e}", code=1) from None
    print(f"copied into {d}; kernel {k.release} ready")
