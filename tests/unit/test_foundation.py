"""Lab foundation, fast parts: kernel catalog, image recipes, accelerator choice, keys, playbooks."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import time
from pathlib import Path

import pytest
from conftest import make_deb

from lab.core.config import ROOT, LabError, Paths
from lab.guest import accel, images, remote, vm
from lab.kernels import catalog as kernels
from lab.run import playbooks


@pytest.fixture
def empty_cache(tmp_path: Path) -> Paths:
    return Paths(cache=tmp_path / "cache")


def test_catalog_has_the_design_aliases():
    default, entries = kernels.catalog()
    assert default == "6.12"
    assert {"6.1", "6.12", "6.2", "host"} <= set(entries)
    assert entries["6.1"].source == "debian" and entries["6.2"].source == "ubuntu"


def test_unknown_kernel_lists_the_known_ones(empty_cache):
    with pytest.raises(LabError) as e:
        kernels.resolve("nonsense", empty_cache)
    msg = str(e.value)
    for alias in ("6.1", "6.12", "6.2", "host"):
        assert f"  {alias} " in msg


def test_kernel_6_2_fails_fast_and_says_how_to_supply_it(empty_cache):
    t0 = time.monotonic()
    with pytest.raises(LabError) as e:
        kernels.resolve("6.2", empty_cache)
    assert time.monotonic() - t0 < 15
    msg = str(e.value)
    assert "kernels.add 6.2" in msg and "LAB_KERNEL_DEBS" in msg and ".deb" in msg


def test_kernel_6_2_accepts_locally_supplied_debs(tmp_path, empty_cache, monkeypatch):
    rel = "6.2.0-39-generic"
    img = make_deb(tmp_path, f"linux-image-unsigned-{rel}", "6.2.0-39.40",
                   {f"boot/vmlinuz-{rel}": b"not really a kernel"})
    mods = make_deb(tmp_path, f"linux-modules-{rel}", "6.2.0-39.40", {f"lib/modules/{rel}/kernel/fs/dummy.ko": b"\0"})
    supplied = tmp_path / "supplied"
    supplied.mkdir()
    for d in (img, mods):
        os.link(d, supplied / d.name)
    monkeypatch.setenv("LAB_KERNEL_DEBS", str(supplied))
    k = kernels.resolve("6.2", empty_cache)
    assert k.release == rel and k.vmlinuz.name == f"vmlinuz-{rel}"
    assert k.modules is not None and (k.modules / "modules.dep").exists()
    assert "supplied" in k.source
    # cached afterwards: no .debs needed any more
    monkeypatch.delenv("LAB_KERNEL_DEBS")
    assert kernels.resolve("6.2", empty_cache).release == rel


def test_a_path_that_is_no_kernel_is_refused(tmp_path, empty_cache):
    junk = tmp_path / "vmlinuz"
    junk.write_bytes(b"\0" * 4096)
    with pytest.raises(LabError, match="not an x86 bzImage"):
        kernels.resolve(str(junk), empty_cache)


def test_recipes_render_and_hash_stably():
    a = images.load_recipe("debian-12")
    b = images.load_recipe("debian-12")
    assert a.hash == b.hash and len(a.hash) == 12
    assert {"python3", "openssh-server", "bpftool", "stress-ng", "libbpf-tools", "iproute2"} <= set(a.packages)
    c = images.load_recipe("debian-12", mirror="http://mirror.invalid/debian")
    assert c.hash != a.hash
    cmd = images.mmdebstrap_command(a, Path("/tmp/x"))
    assert cmd[0] == "mmdebstrap" and "bookworm" in cmd and any(x.startswith("--include=python3") for x in cmd)


def test_broken_recipe_is_named(tmp_path, monkeypatch):
    (tmp_path / "bad.yaml.j2").write_text("name: bad\nsuite: {{ unclosed\n")
    monkeypatch.setattr(images, "RECIPES", tmp_path)
    with pytest.raises(LabError, match="broken"):
        images.load_recipe("bad")


def test_ubuntu_image_stops_at_the_download_with_a_clear_message(empty_cache):
    r = images.load_recipe("ubuntu-22.04")
    assert r.suite == "jammy" and "python3" in r.packages
    cmd = images.mmdebstrap_command(r, empty_cache.images / "x")
    assert "jammy" in cmd
    with pytest.raises(LabError) as e:
        images.build_base(r, empty_cache, log=lambda m: None)
    msg = str(e.value)
    # whichever step stops it first (no Ubuntu keyring on a Debian host, or no Ubuntu mirror), it
    # stops before mmdebstrap runs, and says what to do
    assert ("keyring" in msg and "ubuntu-keyring" in msg) or ("not reachable" in msg and "archive.ubuntu.com" in msg)
    assert "mmdebstrap failed" not in msg


def test_accelerator_can_be_forced_and_probe_answers(monkeypatch):
    monkeypatch.setenv("LAB_ACCEL", "tcg")
    a = accel.choose()
    assert a.name == "tcg" and a.qemu_flag() == ["--disable-kvm", "--qemu-opts=-accel tcg,thread=single"]
    works, why = accel.probe_kvm()
    assert isinstance(works, bool) and why


def test_lab_key_files_are_private(tmp_path):
    key = remote.make_keypair(tmp_path / "lab")
    assert stat.S_IMODE((tmp_path / "lab").stat().st_mode) == 0o700
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(key.with_suffix(".pub").stat().st_mode) == 0o600
    kh = tmp_path / "lab/known_hosts"
    remote.pin_host_key(kh, "127.0.0.1", 2222, "ssh-ed25519 AAAAkey comment")
    assert kh.read_text() == "[127.0.0.1]:2222 ssh-ed25519 AAAAkey\n"


def test_vm_command_forwards_ssh_to_loopback_only(tmp_path):
    k = kernels.Kernel("6.12", "6.12.0", Path("/k/vmlinuz"), None, "test")
    img = images.Image(images.load_recipe("debian-12"), Path("/img/root"), "ssh-ed25519 AAAA")
    cmd = vm.vng_command(k, img, accel.Accel("tcg", "test"), vm.VmSpec(2, "2G", 4242, "lab-t"), tmp_path)
    joined = " ".join(cmd)
    assert "hostfwd=tcp:127.0.0.1:4242-:22" in joined and "--disable-kvm" in cmd
    assert "--root /img/root" in joined and "--cpus 2" in joined


def test_broken_playbook_gets_one_clear_message(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("suites:\n  hooks: [1, 2\n")
    with pytest.raises(LabError, match="not valid YAML"):
        playbooks.load(str(bad))
    bad.write_text("suites:\n  nosuch: {}\n")
    with pytest.raises(LabError, match="unknown suite"):
        playbooks.load(str(bad))
    with pytest.raises(LabError, match="no playbook"):
        playbooks.load("does-not-exist")


@pytest.mark.parametrize("suite,params,says", [
    ("hooks", "{hooks: [kprobe, bogus]}", "hooks: 'bogus' is not one of kprobe"),
    ("hooks", "{trails: 3}", "unknown parameter 'trails'"),
    ("hooks", "{trials: 0}", "trials must be a positive integer"),
    ("hooks", "{perf_events: [sw, pmu]}", "'pmu' is not one of sw, hw"),
    ("maps", "{types: [hash, 'rb_tree:1']}", "'rb_tree:1' is not a map type this suite runs"),
    ("maps", "{operations: [update, delete]}", "'delete' is not one of update, lookup"),
])
def test_playbook_parameters_are_checked_before_anything_boots(tmp_path, suite, params, says):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"suites:\n  {suite}: {params}\n")
    with pytest.raises(LabError, match=f"suite {suite}: .*{re.escape(says)}"):
        playbooks.load(str(bad))


def test_cli_unknown_kernel_exits_nonzero_with_the_list():
    inv = Path(os.sys.executable).with_name("inv")
    res = subprocess.run([str(inv), "lab.up", "--kernel", "nonsense"], cwd=ROOT, capture_output=True, text=True)
    assert res.returncode == 2
    assert "unknown kernel 'nonsense'" in res.stderr + res.stdout and "6.12" in res.stderr + res.stdout


def test_cli_bad_input_exits_2_before_anything_runs(tmp_path):
    """Bad input exits 2 (a run that broke exits 1): a script can tell them apart."""
    inv = Path(os.sys.executable).with_name("inv")
    bad = tmp_path / "bad.yaml"
    bad.write_text("suites:\n  hooks: {trials: ten}\n")
    env = {**os.environ, "LAB_RESULTS": str(tmp_path / "results")}
    hooks = ["bench.hooks", "--kernel", "host", "--playbook", str(bad)]
    for args, says in ((hooks, "trials must be a positive integer"),
                       (["bench.all", "--kernel", "nonsense"], "unknown kernel 'nonsense'"),
                       (["results.report", "--run", "no-such-run"], "no run or kernel matches")):
        res = subprocess.run([str(inv), *args], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120)
        assert res.returncode == 2 and says in res.stderr, (args, res.returncode, res.stderr[-500:])
        assert "Traceback" not in res.stderr
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_guest_agent_is_python38_standard_library_only():
    """The agent runs unchanged on guests with Python 3.8+: 3.8 syntax, stdlib imports only, no
    builtin generics subscripted at run time (list[int] is 3.9+), in every file of the package."""
    import ast
    import sys

    agent = ROOT / "lab" / "agent"
    files = sorted(p for p in agent.rglob("*.py") if "__pycache__" not in p.parts)
    assert len(files) >= 30 and {f.parent.name for f in files} >= {"agent", "hooks", "maps", "tools"}
    for f in files:
        tree = ast.parse(f.read_text(), feature_version=(3, 8))
        future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                     any(a.name == "annotations" for a in n.names) for n in tree.body)
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and not future:
                assert node.value.id not in ("list", "dict", "tuple", "set", "frozenset", "type"), \
                    f"{f.relative_to(agent)}:{node.lineno}: {node.value.id}[...] is 3.9+"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                if isinstance(node, ast.ImportFrom) and node.level:
                    continue
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
                for name in names:
                    assert name.split(".")[0] in sys.stdlib_module_names, f"{f.relative_to(agent)} imports {name}"
            if isinstance(node, ast.Attribute):
                assert node.attr not in ("removeprefix", "removesuffix"), f"{f.name}: str.{node.attr} is 3.9+"
