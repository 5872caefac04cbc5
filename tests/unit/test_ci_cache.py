"""The nightly's caches: .ci/container's pack and unpack run for real (tar, as the container runs it;
a stand-in `docker exec` runs the command here, so no Docker daemon is needed), an empty pack is not a
failure, and the workflow's cache steps are keyed and guarded as they should be (kernel by package
and version, root image by recipe hash, downloads with restore-keys, saved only on success)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from lab.run import nightly
from tests.support.standins import DOCKER

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "images/debian-12-0123456789ab"
KERNEL = "kernels/6.12/linux-image-6.12.1+deb12-amd64"


def _checkout(tmp: Path) -> tuple[Path, dict[str, str]]:
    """A checkout holding .ci/container, a stand-in docker on PATH, and the container's lab cache at
    tmp/cache (LAB_CONTAINER_CACHE)."""
    co = tmp / "checkout"
    (co / ".ci").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "container", co / ".ci" / "container")
    (tmp / "bin").mkdir()
    (tmp / "bin" / "docker").write_text(DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp / 'bin'}:{os.environ['PATH']}", LAB_CONTAINER="fake",
               LAB_CONTAINER_CACHE=str(tmp / "cache"), GITHUB_OUTPUT=str(tmp / "github_output"))
    return co, env


def _container(co: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(co / ".ci" / "container"), *args], env=env, cwd=co, capture_output=True, text=True,
                          timeout=60)


def _lab_cache(cache: Path) -> None:
    """What a leg leaves in the lab cache: a base image (a private key, a symlink, hard links), a
    per-kernel image beside it, the kernel it ran and an older one."""
    root = cache / IMAGE / "root"
    (root / "etc" / "ssh").mkdir(parents=True)
    (root / "bin").mkdir()
    key = root / "etc" / "ssh" / "ssh_host_ed25519_key"
    key.write_text("secret\n")
    key.chmod(0o600)
    (root / "bin" / "busybox").write_bytes(b"\x7fELF" + b"x" * 4096)
    (root / "bin" / "busybox").chmod(0o755)
    os.link(root / "bin" / "busybox", root / "bin" / "sh")
    (root / "bin" / "ls").symlink_to("busybox")
    (cache / IMAGE / "ready").write_text("built\n")
    (cache / (IMAGE + "+6.12.1")).mkdir(parents=True)
    (cache / (IMAGE + "+6.12.1") / "ready").write_text("per kernel\n")
    for k in (KERNEL, "kernels/6.12/linux-image-6.12.0+deb12-amd64"):
        (cache / k / "boot").mkdir(parents=True)
        (cache / k / "kernel.json").write_text('{"release": "x"}\n')
        (cache / k / "boot" / "vmlinuz").write_bytes(b"MZ" + b"k" * 2048)


def _outputs(tmp: Path) -> list[str]:
    f = tmp / "github_output"
    return f.read_text().splitlines() if f.exists() else []


def test_pack_then_unpack_restores_owners_modes_links(tmp_path):
    co, env = _checkout(tmp_path)
    _lab_cache(tmp_path / "cache")
    for name, d in (("image", IMAGE), ("kernel", KERNEL)):
        proc = _container(co, env, "pack", name, d)
        assert proc.returncode == 0, proc.stderr
        assert f"packed {d} into .ci-cache/{name}.tar" in proc.stderr
        assert (co / ".ci-cache" / f"{name}.tar").is_file()
    assert _outputs(tmp_path) == ["packed=true", "packed=true"]

    # a fresh runner: the restored tars unpacked into an empty lab cache
    env2 = dict(env, LAB_CONTAINER_CACHE=str(tmp_path / "fresh"))
    for name in ("image", "kernel"):
        proc = _container(co, env2, "unpack", name)
        assert proc.returncode == 0, proc.stderr
        assert not (co / ".ci-cache" / f"{name}.tar").exists()  # removed once unpacked: disk for the run
    fresh = tmp_path / "fresh"
    got = sorted(str(p.relative_to(fresh)) for p in fresh.rglob("*"))
    want = sorted(str(p.relative_to(tmp_path / "cache")) for d in (IMAGE, KERNEL)
                  for p in [tmp_path / "cache" / d, *(tmp_path / "cache" / d).rglob("*")])
    assert [g for g in got if g.startswith(("images/", "kernels/6.12/"))] == want  # only what was packed
    root = fresh / IMAGE / "root"
    assert (root / "etc/ssh/ssh_host_ed25519_key").stat().st_mode & 0o777 == 0o600
    assert (root / "bin/busybox").stat().st_mode & 0o777 == 0o755
    assert (root / "bin/sh").stat().st_ino == (root / "bin/busybox").stat().st_ino  # hard link kept
    assert os.readlink(root / "bin/ls") == "busybox"
    assert (root / "etc/ssh/ssh_host_ed25519_key").stat().st_uid == (tmp_path / "cache" / IMAGE / "root" /
                                                                     "etc/ssh/ssh_host_ed25519_key").stat().st_uid
    assert (fresh / KERNEL / "boot/vmlinuz").read_bytes() == (tmp_path / "cache" / KERNEL / "boot/vmlinuz").read_bytes()


def test_nothing_to_pack_is_not_a_failure_and_nothing_is_saved(tmp_path):
    co, env = _checkout(tmp_path)
    (tmp_path / "cache").mkdir()  # an empty lab cache: the leg failed before fetching anything
    (co / ".ci-cache").mkdir()
    (co / ".ci-cache" / "kernel.tar").write_text("stale")  # a tar left from a restore is not saved again
    proc = _container(co, env, "pack", "kernel", KERNEL)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to pack" in proc.stderr
    assert not (co / ".ci-cache" / "kernel.tar").exists()
    assert _outputs(tmp_path) == ["packed=false"]
    proc = _container(co, env, "unpack", "kernel")  # nothing restored (a miss): nothing to do
    assert proc.returncode == 0 and "no kernel cache to unpack" in proc.stderr


def test_pack_takes_only_paths_inside_the_lab_cache(tmp_path):
    co, env = _checkout(tmp_path)
    (tmp_path / "cache").mkdir()
    for bad in ("/etc", "kernels/../../etc"):
        proc = _container(co, env, "pack", "kernel", bad)
        assert proc.returncode == 2 and "inside the lab cache" in proc.stderr, proc.stderr


def _bench_steps() -> list[dict]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())["jobs"]["bench"]["steps"]


def test_workflow_caches_keyed_and_saved_only_on_success():
    steps = _bench_steps()
    by_id = {s["id"]: s for s in steps if "id" in s}
    restores = [s for s in steps if s.get("uses", "").startswith("actions/cache/restore@")]
    saves = [s for s in steps if s.get("uses", "").startswith("actions/cache/save@")]
    assert not [s for s in steps if s.get("uses", "").startswith("actions/cache@")]  # restore and save apart
    assert {s["with"]["key"] for s in saves} <= {s["with"]["key"] for s in restores}
    for s in saves:  # only after steps that succeeded, and only what was restored short of an exact hit
        assert s["if"].startswith("success() && "), s
    assert by_id["image"]["with"] == {"path": ".ci-cache/image.tar", "key": "${{ steps.key.outputs.image-key }}"}
    assert by_id["kernel"]["with"] == {"path": ".ci-cache/kernel.tar", "key": "${{ steps.key.outputs.kernel-key }}"}
    for name in ("image", "kernel"):
        pack = by_id[f"pack-{name}"]
        assert pack["run"] == f'.ci/container pack {name} "$DIR"'
        assert pack["env"]["DIR"] == f"${{{{ steps.key.outputs.{name}-path }}}}"
        assert f"steps.{name}.outputs.cache-hit != 'true'" in pack["if"] and pack["if"].startswith("success()")
        (save,) = [s for s in saves if s["with"]["path"] == f".ci-cache/{name}.tar"]
        assert save["if"] == f"success() && steps.pack-{name}.outputs.packed == 'true'"
    dl = by_id["downloads"]
    assert dl["with"]["restore-keys"] == "downloads-debian12-"
    assert "lab/data/debian-packages.txt" in dl["with"]["key"] and "requirements.lock" in dl["with"]["key"]
    names = [s.get("name") for s in steps]
    # the kernel and image are unpacked before the lab runs and packed after it
    unpack = next(s for s in steps if ".ci/container unpack" in s.get("run", ""))
    long = next(s for s in steps if "bench.all" in s.get("run", ""))
    assert names.index(unpack["name"]) < names.index(long["name"]) < names.index(by_id["pack-image"]["name"])


def test_cache_entries_name_the_directories_the_lab_uses(tmp_path, monkeypatch):
    """The key step's outputs: the kernel by alias, package and version; the image by recipe hash, the
    same for every kernel; the paths are the lab cache's own (kernels.fetch and images.build_base)."""
    assert nightly.cache_entries("host") == {}
    e = nightly.cache_entries("6.2")  # an Ubuntu mainline kernel: no archive read
    assert e["kernel-key"] == "kernel-6.2-v6.2" and e["kernel-path"] == "kernels/6.2"
    assert e["image-key"].startswith("image-debian-12-") and e["image-path"] == "images/" + e["image-key"][6:]
    from lab.guest import images

    assert e["image-key"].endswith(images.load_recipe("debian-12").hash)
    assert nightly.cachekey("6.2") == f"6.2-v6.2-{e['image-key'][6:]}"
    out = subprocess.run([str(ROOT / "labctl"), "kernels.cachekey", "--kernel", "6.2", "--outputs"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [f"{k}={v}" for k, v in e.items()]


def test_matrix_job_needs_python_and_the_labs_code_only():
    """No container, no Debian packages: a Python, the runtime lock (hashes checked, pip downloads
    cached), and the lab's code from the checkout."""
    job = yaml.safe_load((ROOT / ".github" / "workflows" / "nightly.yml").read_text())["jobs"]["matrix"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    for heavy in (".ci/container", "apt", "./labctl", "requirements.lock"):
        assert heavy not in runs, heavy
    assert "--require-hashes -r requirements-runtime.lock" in runs
    assert ".venv/bin/python -m lab.cli kernels.matrix --playbook nightly" in runs
    uses = [s.get("uses", "").split("@")[0] for s in job["steps"]]
    assert "actions/setup-python" in uses and "actions/cache/restore" in uses and "actions/cache/save" in uses


def test_venv_cache_is_the_one_labctl_would_build():
    """./labctl's venv ($LAB_CACHE/venv-<lock hash>, the container's lab cache is .lab-cache) cached
    under the lock's hash, exact key only (another lock's venv is a directory ./labctl would not use),
    made readable and saved only after a set-up that succeeded; every job that runs ./labctl restores it."""
    labctl = (ROOT / "labctl").read_text()
    assert 'VENV="$LAB_CACHE/venv-$lockhash"' in labctl
    container = (ROOT / ".ci" / "container").read_text()
    assert 'HOST_CACHE=${LAB_HOST_CACHE:-$PWD/.lab-cache}' in container and '"$1"/venv-*' in container
    key = "venv-debian12-${{ hashFiles('requirements.lock', 'requirements-nodeps.lock') }}"  # both make the venv
    for wf in ("nightly.yml", "ci.yml"):
        jobs = yaml.safe_load((ROOT / ".github" / "workflows" / wf).read_text())["jobs"]
        for name, job in jobs.items():
            steps = job["steps"]
            if not any(".ci/container start" in s.get("run", "") for s in steps):
                continue
            venv = [s for s in steps if s.get("with", {}).get("path") == ".lab-cache/venv-*"]
            assert venv and all(s["with"]["key"] == key and "restore-keys" not in s["with"] for s in venv), (wf, name)
            names = [s.get("name") for s in steps]
            start = next(s for s in steps if ".ci/container start" in s.get("run", ""))
            restore = next(s for s in venv if s["uses"].startswith("actions/cache/restore@"))
            assert names.index(restore["name"]) < names.index(start["name"])
            for save in (s for s in venv if s["uses"].startswith("actions/cache/save@")):
                assert save["if"] == "success() && steps.venv.outputs.cache-hit != 'true'"
                share = next(s for s in steps if s.get("run") == ".ci/container share")
                assert names.index(share["name"]) < names.index(save["name"])
                assert "steps.venv.outputs.cache-hit != 'true'" in share["if"]
