"""kernels.*: the kernel catalog (images/kernels.yaml) and the kernel cache."""

import json

from invoke import Exit, task

from lab.core.config import LabError, Paths
from lab.kernels import catalog as kernels
from lab.kernels.sources import SOURCES


@task(name="list", help={"refresh": "re-read the Debian archive's package lists now (else at most 6 h old)",
                         "offline": "show only the catalog and the cache, do not read the archive",
                         "json_": "one JSON document (a list of kernels) instead of text"})
def list_(c, refresh=False, offline=False, json_=False):
    """Kernel aliases, where each comes from, the version the archive offers now, and what is cached."""
    default, entries = kernels.catalog()
    paths = Paths()
    have = kernels.cached(paths)
    text, doc = [], []
    for alias, e in entries.items():
        mark = " (default)" if alias == default else ""
        text.append(f"{alias:6s} {e.source:7s} {e.description}{mark}")
        item = {"alias": alias, "source": e.source, "description": e.description, "default": alias == default,
                "cached": [{"release": k.release, "source": k.source, "vmlinuz": str(k.vmlinuz)}
                           for k in have.get(alias, [])]}
        source = SOURCES[e.source]
        lines, fields = source.listing(e, paths, offline, refresh)
        item.update(fields)
        text += [f"{'':15s}{line}" for line in lines]
        for k in have.get(alias, []):
            text.append(f"{'':15s}cached: {k.release}  [{k.source}]  {k.vmlinuz}")
        if not have.get(alias) and source.not_cached(e):
            text.append(f"{'':15s}{source.not_cached(e)}")
        doc.append(item)
    if json_:
        print(json.dumps(doc, indent=2))
        return
    print("\n".join(text))
    print("\nAny other --kernel value is a path: a vmlinuz/bzImage, a kernel build tree, a .deb or a dir of .debs.")


@task(help={"kernel": "alias or path", "refresh": "pick the newest package even if one is cached"})
def fetch(c, kernel="6.12", refresh=False):
    """Fetch and unpack a kernel into the cache (done automatically by lab.up)."""
    try:
        k = kernels.resolve(kernel, refresh=refresh)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    print(f"{k.alias}: {k.release}  {k.source}\n  image   {k.vmlinuz}\n  modules {k.modules}")


@task(positional=["alias"], iterable=["deb"], help={"deb": "a .deb file (repeat for each)"})
def add(c, alias, deb=None):
    """Supply a kernel that cannot be downloaded here: ./labctl kernels.add 6.2 --deb A.deb --deb B.deb"""
    try:
        d = kernels.add_supplied(alias, deb or [])
        k = kernels.resolve(alias)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    print(f"copied into {d}; kernel {k.release} ready")


@task(help={"playbook": "print that playbook's kernels: and targets: instead of the whole catalog"})
def matrix(c, playbook=""):
    """The kernel matrix as JSON ({"kernel": [...]}): every catalog kernel, or a playbook's matrix."""
    from lab.run import nightly

    try:
        print(json.dumps(nightly.matrix(playbook)))
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None


@task(help={"kernel": "catalog alias", "outputs": "the nightly's two caches as NAME=VALUE lines for "
                                                  "$GITHUB_OUTPUT: kernel-key, kernel-path, image-key, image-path"})
def cachekey(c, kernel="6.12", outputs=False):
    """A CI cache key for a kernel: its package and version now offered, and the image recipe hash."""
    from lab.run import nightly

    try:
        if outputs:
            print("".join(f"{k}={v}\n" for k, v in nightly.cache_entries(kernel).items()), end="")
            return
        print(nightly.cachekey(kernel))
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
