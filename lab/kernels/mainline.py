"""Ubuntu's mainline kernel builds (https://kernel.ubuntu.com/mainline/vX.Y[.Z]/amd64/), downloaded
by the lab: the directory's CHECKSUMS file, then the linux-image-unsigned-*-generic,
linux-modules-*-generic and linux-headers-* .debs, each checked against its sha256 there, with a
progress bar (rich on a terminal, plain lines otherwise). The base URL is LAB_UBUNTU_MAINLINE_URL.
Downloads go to a temporary directory under the kernel cache, removed on every path: a file whose
checksum does not match is refused and nothing is left behind. The caller unpacks the .debs like
any other (lab/kernels/catalog.py)."""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from lab.core.config import LabError

DEFAULT_URL = "https://kernel.ubuntu.com/mainline/"
WANTED = ("linux-image-unsigned-*-generic_*_amd64.deb", "linux-modules-*-generic_*_amd64.deb",
          "linux-headers-*_all.deb", "linux-headers-*-generic_*_amd64.deb")
VERSION = re.compile(r"v\d+\.\d+(\.\d+)?(-rc\d+)?")
CHUNK = 1 << 16


def base_url() -> str:
    return os.environ.get("LAB_UBUNTU_MAINLINE_URL") or DEFAULT_URL


def dir_url(version: str) -> str:
    return base_url().rstrip("/") + f"/{version}/amd64/"


def check_version(version: str) -> str:
    if not VERSION.fullmatch(version):
        raise LabError(f"{version!r} is not a mainline version: give mainline:vX.Y or mainline:vX.Y.Z "
                       "(e.g. mainline:v6.6)")
    return version


def parse_checksums(text: str) -> dict[str, str]:
    """file name -> sha256 from a mainline CHECKSUMS file (sha1 and sha256 lines, `HEX  NAME`)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            out[parts[1].lstrip("*")] = parts[0]
    return out


def wanted(names: list[str]) -> list[str]:
    return sorted(n for n in names if any(fnmatch.fnmatch(n, g) for g in WANTED))


def _get(url: str, timeout: float = 30.0):
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise LabError(f"{url}: HTTP {e.code} {e.reason}") from None


@contextlib.contextmanager
def _progress(total: int) -> Iterator:
    """advance(name, nbytes) callbacks: a rich bar on a terminal, else a line per file."""
    if sys.stderr.isatty():
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                      transient=True) as bar:
            task = bar.add_task("mainline kernel", total=total or None)

            def advance(name: str, n: int) -> None:
                bar.update(task, advance=n, description=name)
            yield advance
    else:
        seen: set[str] = set()

        def advance(name: str, n: int) -> None:
            if name not in seen:
                seen.add(name)
                print(f"downloading {name}", file=sys.stderr, flush=True)
        yield advance


def download(version: str, cache_debs: Path) -> tuple[Path, list[Path]]:
    """(temporary directory, verified .debs in it) for one mainline version; the caller removes the
    directory (see `fetched`). Raises LabError, leaving nothing, on any failure."""
    url = dir_url(check_version(version))
    try:
        with _get(url + "CHECKSUMS") as r:
            sums = parse_checksums(r.read().decode(errors="replace"))
    except (urllib.error.URLError, OSError) as e:
        raise LabError(f"cannot read {url}CHECKSUMS ({type(e).__name__}: {getattr(e, 'reason', e)})") from None
    names = wanted(list(sums))
    if not any(n.startswith("linux-image-unsigned-") for n in names):
        raise LabError(f"{url}CHECKSUMS lists no linux-image-unsigned-*-generic amd64 .deb (the build may have "
                       "failed for amd64: see the directory's index)")
    made = [d for d in (cache_debs, *cache_debs.parents) if not d.exists()]  # removed again once empty
    cache_debs.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".mainline-{version}-", dir=cache_debs))
    try:
        sizes = {}
        for n in names:
            with contextlib.suppress(Exception), _get(url + n) as r:
                sizes[n] = int(r.headers.get("Content-Length") or 0)
        debs = []
        with _progress(sum(sizes.values())) as advance:
            for n in names:
                h = hashlib.sha256()
                dest = tmp / n
                try:
                    with _get(url + n) as r, dest.open("wb") as f:
                        while chunk := r.read(CHUNK):
                            f.write(chunk)
                            h.update(chunk)
                            advance(n, len(chunk))
                except (urllib.error.URLError, OSError) as e:
                    raise LabError(f"download of {url}{n} failed ({type(e).__name__}: "
                                   f"{getattr(e, 'reason', e)})") from None
                if h.hexdigest() != sums[n]:
                    raise LabError(f"{url}{n}: sha256 {h.hexdigest()} does not match CHECKSUMS ({sums[n]}); "
                                   "refused, nothing kept")
                debs.append(dest)
        return tmp, debs
    except BaseException:
        _remove(tmp, made)
        raise


def _remove(tmp: Path, made: list[Path]) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    for d in [tmp.parent, *made]:  # innermost first; only if empty
        with contextlib.suppress(OSError):
            d.rmdir()


@contextlib.contextmanager
def fetched(version: str, cache_debs: Path) -> Iterator[list[Path]]:
    """The verified .debs of a mainline version, removed again after use."""
    tmp, debs = download(version, cache_debs)
    try:
        yield debs
    finally:
        _remove(tmp, [])
