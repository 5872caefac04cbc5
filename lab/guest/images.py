"""Root images: recipes (images/<name>.yaml.j2, rendered with jinja2) built with mmdebstrap,
cached by the hash of the rendered recipe. Per kernel, a hard-linked copy of the base gets that
kernel's modules, so one base serves every kernel and guests can share it read-only.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import jinja2
import yaml

from lab.core.config import ROOT, LabError, Paths
from lab.kernels.catalog import Kernel

RECIPES = ROOT / "images"


@dataclass(frozen=True)
class Recipe:
    name: str
    suite: str
    variant: str
    keyring: str
    mirrors: tuple[str, ...]
    packages: tuple[str, ...]
    customize: tuple[str, ...]
    text: str  # the rendered recipe (what the hash covers)
    builder: str = "mmdebstrap"

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Image:
    recipe: Recipe
    root: Path  # directory handed to the guest as its root (read-only)
    host_key_pub: str  # the guest's ssh host key, pinned on the host

    @property
    def id(self) -> str:
        return self.root.parent.name


def known() -> list[str]:
    return sorted(p.name.removesuffix(".yaml.j2") for p in RECIPES.glob("*.yaml.j2"))


def load_recipe(name: str, **variables: object) -> Recipe:
    path = RECIPES / f"{name}.yaml.j2"
    if not path.exists():
        raise LabError(f"no image recipe {name!r}; known: {', '.join(known())}")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        text = env.from_string(path.read_text()).render(**variables)
        data = yaml.safe_load(text)
    except (jinja2.TemplateError, yaml.YAMLError) as e:
        raise LabError(f"image recipe {path} is broken: {e}") from None
    try:
        return Recipe(name=data["name"], suite=data["suite"], variant=data.get("variant", "minbase"),
                      keyring=data["keyring"], mirrors=tuple(data["mirrors"]), packages=tuple(data["packages"]),
                      customize=tuple(data.get("customize", ())), text=text,
                      builder=data.get("builder", "mmdebstrap"))
    except (KeyError, TypeError) as e:
        raise LabError(f"image recipe {path} lacks a field: {e}") from None


def mmdebstrap_command(recipe: Recipe, target: Path) -> list[str]:
    cmd = ["mmdebstrap", f"--variant={recipe.variant}", f"--keyring={recipe.keyring}",
           "--include=" + ",".join(recipe.packages), "--aptopt=Acquire::Retries 3"]
    for hook in recipe.customize:
        cmd.append(f"--customize-hook={hook}")
    cmd += [recipe.suite, str(target), *recipe.mirrors]
    return cmd


def check_mirrors(recipe: Recipe, timeout: float = 5.0) -> None:
    """Fail fast, with what to do, when a recipe's mirror cannot be reached."""
    for line in recipe.mirrors:
        url = line.split()[1].rstrip("/") + f"/dists/{recipe.suite}/Release"
        host = urllib.parse.urlparse(url).hostname
        try:
            urllib.request.urlopen(url, timeout=timeout).close()
        except Exception as e:  # noqa: BLE001 - any failure means the build cannot go on
            raise LabError(
                f"image {recipe.name}: its mirror {host} is not reachable ({type(e).__name__}: "
                f"{getattr(e, 'reason', e)}). Build it where the mirror is reachable, or point the recipe at "
                f"a reachable mirror (LAB_MIRROR=URL), or use --image debian-12.") from None
        break  # the first mirror answers for the suite


def build_base(recipe: Recipe, paths: Paths, log=print) -> Path:
    """The base root for a recipe, built with mmdebstrap if not cached. Returns its directory."""
    base = paths.images / f"{recipe.name}-{recipe.hash}"
    root = base / "root"
    if (base / "ready").exists():
        return base
    if not Path(recipe.keyring).exists():
        raise LabError(f"image {recipe.name}: the archive keyring {recipe.keyring} is not installed on this host, "
                       "so its packages cannot be verified. Install the distribution's keyring package "
                       "(e.g. ubuntu-keyring) where its archive is reachable, or use --image debian-12.")
    check_mirrors(recipe)
    if os.geteuid() != 0:
        raise LabError("building a root image needs root (mmdebstrap); run ./labctl as root")
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    (base / "recipe.yaml").write_text(recipe.text)
    cmd = mmdebstrap_command(recipe, root)
    log(f"image {recipe.name}: building {root} with mmdebstrap (about a minute) ...")
    t0 = time.monotonic()
    with (base / "build.log").open("w") as logf:
        proc = subprocess.run(cmd, stdout=logf, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        tail = (base / "build.log").read_text().splitlines()[-15:]
        raise LabError(f"image {recipe.name}: mmdebstrap failed (exit {proc.returncode}); log "
                       f"{base / 'build.log'}:\n" + "\n".join(tail))
    key = base / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{recipe.name}", "-f", str(key)],
                   check=True)
    shutil.copy2(key, root / "etc/ssh/ssh_host_ed25519_key")
    shutil.copy2(key.with_suffix(".pub"), root / "etc/ssh/ssh_host_ed25519_key.pub")
    os.chmod(root / "etc/ssh/ssh_host_ed25519_key", 0o600)
    (base / "ready").write_text(f"built in {time.monotonic() - t0:.0f} s\n")
    log(f"image {recipe.name}: built in {time.monotonic() - t0:.0f} s")
    return base


PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")  # a Debian package name


def check_packages(packages: object) -> tuple[str, ...]:
    """A playbook's image.packages, checked (ValueError says what is wrong)."""
    if not isinstance(packages, list | tuple) or not all(isinstance(p, str) and PACKAGE_RE.match(p) for p in packages):
        raise ValueError(f"image.packages must be a list of Debian package names, not {packages!r}")
    return tuple(dict.fromkeys(packages))


def recipe_for(name: str, packages: tuple[str, ...] = ()) -> Recipe:
    """The recipe `name` rendered with the mirror asked for and the playbook's extra packages
    (image.packages: in the rendered text, so in the hash: such an image is cached apart)."""
    variables: dict[str, object] = {k: v for k, v in {"mirror": os.environ.get("LAB_MIRROR")}.items() if v}
    if packages:
        variables["extra_packages"] = list(packages)
    return load_recipe(name, **variables)


def image_for(name: str, kernel: Kernel, paths: Paths | None = None, log=print,
              packages: tuple[str, ...] = ()) -> Image:
    """The root image `name` (with the extra `packages`) with `kernel`'s modules in it (built and
    cached as needed)."""
    paths = paths or Paths()
    recipe = recipe_for(name, packages)
    base = build_base(recipe, paths, log)
    pub = (base / "ssh_host_ed25519_key.pub").read_text().strip()
    if kernel.modules is None:
        return Image(recipe, base / "root", pub)
    kdir = paths.images / f"{recipe.name}-{recipe.hash}+{kernel.release}"
    if not (kdir / "ready").exists():
        shutil.rmtree(kdir, ignore_errors=True)
        kdir.mkdir(parents=True)
        subprocess.run(["cp", "-al", str(base / "root"), str(kdir / "root")], check=True)
        dest = kdir / "root/lib/modules" / kernel.release
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(kernel.modules), str(dest)], check=True)
        (kdir / "ready").write_text(f"{recipe.name} {recipe.hash} + modules of {kernel.release}\n")
    return Image(recipe, kdir / "root", pub)
