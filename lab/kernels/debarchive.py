"""Debian's archive through a private apt configuration under the lab cache (never /etc/apt).

One directory per Debian suite the kernel catalog names (bookworm, bullseye, trixie, unstable,
experimental): its sources list, package lists, downloaded .debs and the keyring that checks the
archive's signatures all live under <cache>/apt/<suite>/. Nothing is installed on the host: the
lab only lists packages, reads their versions and downloads .deb files.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lab.core.config import LabError

MIRROR = os.environ.get("LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
SECURITY = os.environ.get("LAB_DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
# the host's copy of Debian's archive keyring (package debian-archive-keyring), copied into the cache
SYSTEM_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
MAX_LIST_AGE = 6 * 3600.0  # seconds before a suite's package lists are refreshed


def natural(s: str) -> list:
    """Sort key that orders 6.12.9 before 6.12.10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def _sources(suite: str) -> list[tuple[str, str]]:
    """(mirror, suite) pairs apt reads for `suite`: stable releases get their updates and security
    suites (Debian ships point-release kernels there), unstable and experimental only themselves."""
    if suite in ("unstable", "sid", "experimental"):
        return [(MIRROR, suite)]
    return [(MIRROR, suite), (MIRROR, f"{suite}-updates"), (SECURITY, f"{suite}-security")]


@dataclass(frozen=True)
class Suite:
    """One Debian suite seen through the lab's own apt configuration."""

    name: str
    cache: Path  # the lab cache root

    @property
    def dir(self) -> Path:
        return self.cache / "apt" / self.name

    @property
    def keyring(self) -> Path:
        return self.dir / "keyrings" / "debian-archive-keyring.gpg"

    @property
    def lists(self) -> Path:
        return self.dir / "lists"

    def options(self) -> list[str]:
        d = self.dir
        opts = {
            "Dir::Etc::SourceList": d / "sources.list",
            "Dir::Etc::SourceParts": "/dev/null",
            "Dir::Etc::Parts": "/dev/null",
            "Dir::Etc::Preferences": "/dev/null",
            "Dir::Etc::PreferencesParts": "/dev/null",
            "Dir::State::Lists": self.lists,
            "Dir::State::status": "/dev/null",
            "Dir::Cache": d / "cache",
            # keep the parsed lists between calls (Debian's container images set it to "": each
            # apt-cache call would parse every list again, ~2 s instead of ~0.6 s)
            "Dir::Cache::pkgcache": "pkgcache.bin",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
            "Debug::NoLocking": "1",
            "APT::Sandbox::User": "root",  # downloads land in the cache owned by the caller
            "Acquire::Languages": "none",
        }
        out: list[str] = []
        for k, v in opts.items():
            out += ["-o", f"{k}={v}"]
        return out

    def _prepare(self) -> None:
        for sub in ("lists/partial", "cache/archives/partial", "keyrings"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        if not self.keyring.exists():
            if not SYSTEM_KEYRING.exists():
                raise LabError(f"no Debian archive keyring at {SYSTEM_KEYRING}: apt-get install debian-archive-keyring")
            shutil.copyfile(SYSTEM_KEYRING, self.keyring)
        lines = [f"deb [signed-by={self.keyring}] {url} {s} main" for url, s in _sources(self.name)]
        (self.dir / "sources.list").write_text("\n".join(lines) + "\n")

    def fresh(self) -> bool:
        stamp = self.dir / "updated"
        return stamp.exists() and time.time() - stamp.stat().st_mtime < MAX_LIST_AGE

    def update(self, force: bool = False) -> None:
        """apt-get update into the private lists (skipped when they are recent)."""
        self._prepare()
        if self.fresh() and not force:
            return
        proc = subprocess.run(["apt-get", *self.options(), "update", "-q"], capture_output=True, text=True)
        problems = [ln for ln in (proc.stdout + proc.stderr).splitlines()
                    if ln.startswith(("E:", "W:", "Err:"))]
        if proc.returncode != 0 or any(p.startswith(("E:", "Err:")) for p in problems):
            have = any(self.lists.glob("*_Packages"))
            msg = (f"apt-get update for Debian {self.name} failed: " + "; ".join(problems[-3:] or [proc.stderr[-300:]])
                   + f" (mirror {MIRROR}; set LAB_DEBIAN_MIRROR for another)")
            if not have:
                raise LabError(msg)
            print(f"warning: {msg}; using the package lists cached earlier", flush=True)
            return
        (self.dir / "updated").write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))

    def candidates(self, pattern: str, exclude: tuple[str, ...] = ()) -> list[str]:
        """Package names matching the glob `pattern` (minus `exclude` globs), oldest first."""
        self.update()
        regex = "^" + fnmatch.translate(pattern).removeprefix("(?s:").removesuffix(")\\Z") + "$"
        out = subprocess.run(["apt-cache", *self.options(), "search", "--names-only", regex],
                             capture_output=True, text=True)
        names = {ln.split(" ", 1)[0] for ln in out.stdout.splitlines()}
        keep = (n for n in names
                if fnmatch.fnmatchcase(n, pattern) and not any(fnmatch.fnmatchcase(n, x) for x in exclude))
        return sorted(keep, key=natural)

    def version(self, package: str) -> str | None:
        """The version apt would download for `package`, or None if the suite lacks it."""
        out = subprocess.run(["apt-cache", *self.options(), "show", "--no-all-versions", package],
                             capture_output=True, text=True)
        for ln in out.stdout.splitlines():
            if ln.startswith("Version:"):
                return ln.split(":", 1)[1].strip()
        return None

    def show(self, packages: list[str]) -> dict[str, dict[str, str]]:
        """package -> its record's fields (Version, Depends, ...), for the versions apt would
        download, in one apt-cache call; packages the suite lacks are absent."""
        out = subprocess.run(["apt-cache", *self.options(), "show", "--no-all-versions", *packages],
                             capture_output=True, text=True)
        records: dict[str, dict[str, str]] = {}
        for block in out.stdout.split("\n\n"):
            fields = dict(ln.split(": ", 1) for ln in block.splitlines() if ": " in ln and not ln.startswith(" "))
            if "Package" in fields:
                records.setdefault(fields["Package"], fields)
        return records

    def closure(self, package: str, limit: int = 24) -> list[str]:
        """`package` and every package it depends on, recursively (Pre-Depends and Depends; the
        first of each set of alternatives; virtual packages left out), at most `limit` of them."""
        seen: list[str] = []
        level = [package]
        while level:
            records = self.show(level)
            seen += [p for p in level if p in records]
            if len(seen) > limit:
                raise LabError(f"Debian {self.name}: {package} depends on more than {limit} packages")
            nxt: list[str] = []
            for p in level:
                for key in ("Pre-Depends", "Depends"):
                    for dep in records.get(p, {}).get(key, "").split(","):
                        name = dep.split("|")[0].strip().split(" ")[0].split(":")[0]
                        if name and name not in seen and name not in nxt:
                            nxt.append(name)
            level = nxt
        return seen

    def has(self, package: str) -> bool:
        return self.version(package) is not None

    def download(self, package: str, dest: Path) -> Path:
        """apt-get download `package` into `dest`; returns the .deb (kept: a cache)."""
        dest.mkdir(parents=True, exist_ok=True)
        version = self.version(package)
        if version is None:
            raise LabError(f"Debian {self.name} has no package {package}")
        fname = f"{package}_{version.replace(':', '%3a')}_amd64.deb"
        if (dest / fname).exists():
            return dest / fname
        print(f"  apt-get download {package} {version} (Debian {self.name})", flush=True)
        proc = subprocess.run(["apt-get", *self.options(), "download", f"{package}={version}"], cwd=dest,
                              capture_output=True, text=True)
        debs = sorted(dest.glob(f"{package}_*.deb"), key=lambda p: p.stat().st_mtime)
        if proc.returncode != 0 or not debs:
            for partial in dest.glob(f"{package}_*.deb.*"):
                partial.unlink(missing_ok=True)
            raise LabError(f"apt-get download {package} failed: {proc.stderr.strip()[-400:]} "
                           f"(is {MIRROR} reachable?)")
        return debs[-1]
