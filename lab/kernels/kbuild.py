"""Kernels built from a git tree, for bench.bisect: one object tree per tree, so moving to the next
commit rebuilds only what changed, ccache over gcc where it is installed, and each commit's image
kept under the cache (a commit is never built twice).

Engine: virtme-ng's build (`vng --build --config lab/data/bisect.config`, in the tree's worktree: virtme-ng
builds in place, so the worktree is the object tree) when `vng` is on PATH (virtme-ng is a dependency
of the lab), else `make O=OBJ` over `defconfig` with the same fragment merged
(scripts/kconfig/merge_config.sh) and `olddefconfig`. KBUILD_BUILD_TIMESTAMP/USER/HOST are fixed, so
a rebuild does not recompile the version files and the banner (whose length the guest's instruction
counts could see) is the same at every commit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from lab.core.config import InputError, LabError

# What a kernel build needs on a Debian host: tool -> package (checked before the first build).
TOOLS = {"make": "make", "gcc": "gcc", "flex": "flex", "bison": "bison", "bc": "bc", "pahole": "dwarves",
         "perl": "perl"}
HEADERS = {"/usr/include/libelf.h": "libelf-dev", "/usr/include/openssl/ssl.h": "libssl-dev"}
CCACHE_DIR = Path("/usr/lib/ccache")  # Debian's ccache: gcc/cc names that go through ccache
FIXED_ENV = {"KBUILD_BUILD_TIMESTAMP": "2026-01-01", "KBUILD_BUILD_USER": "lab", "KBUILD_BUILD_HOST": "lab"}
IMAGE = Path("arch/x86/boot/bzImage")


def fragment() -> Path:
    return Path(str(resources.files("lab") / "data" / "bisect.config"))


def missing() -> list[str]:
    """The Debian packages a build needs that this host lacks."""
    need = [pkg for tool, pkg in TOOLS.items() if shutil.which(tool) is None]
    need += [pkg for path, pkg in HEADERS.items() if not Path(path).exists()]
    return sorted(set(need))


def tree_id(tree: Path) -> str:
    return hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]


@dataclass
class TreeBuilder:
    """Builds the commit checked out in `work` (a worktree of the user's tree); images under `cache`."""

    cache: Path  # <lab cache>/kbuild/<tree id>
    engine: str = ""  # vng | make; "" = vng where installed
    jobs: int = 0
    log: Path | None = None

    def __post_init__(self) -> None:
        self.engine = self.engine or ("vng" if shutil.which("vng") else "make")
        if self.engine not in ("vng", "make"):
            raise InputError(f"--engine {self.engine!r}: vng or make")
        lacking = missing()
        if lacking:
            raise InputError(f"building kernels needs {', '.join(lacking)}: apt-get install {' '.join(lacking)}")
        self.jobs = self.jobs or os.cpu_count() or 1

    def env(self) -> dict[str, str]:
        env = dict(os.environ, **FIXED_ENV)
        if CCACHE_DIR.is_dir():
            env["PATH"] = f"{CCACHE_DIR}:{env.get('PATH', '')}"
            env.setdefault("CCACHE_DIR", str(self.cache / "ccache"))
            env.setdefault("CCACHE_BASEDIR", str(self.cache))
        return env

    def _run(self, cmd: list[str], cwd: Path) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        log = self.log or self.cache / "build.log"
        with log.open("a") as f:
            f.write(f"$ (cd {cwd}) {' '.join(cmd)}\n")
            f.flush()
            proc = subprocess.run(cmd, cwd=cwd, env=self.env(), stdout=f, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            raise LabError(f"kernel build failed ({' '.join(cmd[:3])}... exit {proc.returncode}): see {log}")

    def build(self, work: Path, rev: str) -> Path:
        kept = self.cache / "images" / rev / "bzImage"
        if kept.is_file():
            return kept
        if self.engine == "vng":
            self._run(["vng", "--build", "--config", str(fragment())], cwd=work)
            built = work / IMAGE
        else:
            obj = self.cache / "obj"
            if not (obj / ".config").is_file():
                obj.mkdir(parents=True, exist_ok=True)
                self._run(["make", f"O={obj}", "defconfig"], cwd=work)
                self._run(["scripts/kconfig/merge_config.sh", "-m", "-O", str(obj), str(obj / ".config"),
                           str(fragment())], cwd=work)
            self._run(["make", f"O={obj}", "olddefconfig"], cwd=work)
            self._run(["make", f"O={obj}", f"-j{self.jobs}", "bzImage"], cwd=work)
            built = obj / IMAGE
        if not built.is_file():
            raise LabError(f"the build of {rev[:12]} left no {IMAGE}")
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built, kept)
        return kept
