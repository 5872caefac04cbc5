"""Ubuntu mainline kernels downloaded by the lab (lab/kernels/mainline.py), against a fake mainline archive
served over real HTTP on 127.0.0.1: CHECKSUMS, .debs built with dpkg-deb, sha256 checks, unpacking;
a corrupted .deb refused with nothing left in the cache; an unreachable URL gives the supply message."""

from __future__ import annotations

import functools
import hashlib
import http.server
import subprocess
import threading
from pathlib import Path

import pytest

from lab.core.config import LabError, Paths
from lab.kernels import catalog as kernels
from lab.kernels import mainline

REL = "6.2.0-060200-generic"


def _deb(out: Path, name: str, files: dict[str, bytes]) -> Path:
    root = out / f"src-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: 6.2.0-060200.202302191831\n"
                                         "Architecture: amd64\nMaintainer: t <t@t>\nDescription: test\n")
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    deb = out / f"{name}_6.2.0-060200.202302191831_amd64.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def archive(tmp_path):
    """A fake https://kernel.ubuntu.com/mainline/ tree: v6.2/amd64/{CHECKSUMS,*.deb}, served on 127.0.0.1."""
    d = tmp_path / "www" / "mainline" / "v6.2" / "amd64"
    d.mkdir(parents=True)
    debs = [_deb(d, f"linux-image-unsigned-{REL}", {f"boot/vmlinuz-{REL}": b"not really a kernel"}),
            _deb(d, f"linux-modules-{REL}", {f"lib/modules/{REL}/kernel/x.ko": b"x"}),
            _deb(d, f"linux-headers-{REL}", {f"usr/src/linux-headers-{REL}/Makefile": b"all:\n"})]
    (d / "linux-image-unsigned-6.2.0-060200-lowlatency_x_amd64.deb").write_bytes(b"not wanted")
    lines = ["# Checksums, check with the command below:", "#     shasum -c CHECKSUMS", "", "# Checksums-Sha1:"]
    files = sorted(d.glob("*.deb"))
    lines += [f"{hashlib.sha1(p.read_bytes()).hexdigest()}  {p.name}" for p in files]
    lines += ["", "# Checksums-Sha256:"] + [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in files]
    (d / "CHECKSUMS").write_text("\n".join(lines) + "\n")
    handler = functools.partial(_Quiet, directory=str(tmp_path / "www"))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/mainline", d, debs
    finally:
        srv.shutdown()
        srv.server_close()


def test_parse_checksums_and_wanted():
    sums = mainline.parse_checksums("# x\n" + "a" * 40 + "  f.deb\n" + "b" * 64 + "  f.deb\n")
    assert sums == {"f.deb": "b" * 64}
    assert mainline.wanted([f"linux-image-unsigned-{REL}_1_amd64.deb",
                            "linux-image-unsigned-6.2.0-1-lowlatency_1_amd64.deb",
                            "linux-headers-6.2.0-060200_1_all.deb", f"linux-modules-{REL}_1_amd64.deb"]) == [
        "linux-headers-6.2.0-060200_1_all.deb", f"linux-image-unsigned-{REL}_1_amd64.deb",
        f"linux-modules-{REL}_1_amd64.deb"]
    with pytest.raises(LabError, match="not a mainline version"):
        mainline.check_version("6.6; rm -rf /")


def test_6_2_and_mainline_versions_downloaded_checked_and_unpacked(archive, tmp_path, monkeypatch, capsys):
    url, _, _ = archive
    monkeypatch.setenv("LAB_UBUNTU_MAINLINE_URL", url)
    monkeypatch.delenv("LAB_KERNEL_DEBS", raising=False)
    paths = Paths(cache=tmp_path / "cache")
    k = kernels.resolve("6.2", paths)
    assert k.release == REL and k.vmlinuz.read_bytes() == b"not really a kernel"
    assert (k.modules / "modules.dep").exists() and "Ubuntu mainline v6.2" in k.source
    assert (k.vmlinuz.parents[1] / "usr/src" / f"linux-headers-{REL}" / "Makefile").exists()
    assert "downloading linux-image-unsigned-" in capsys.readouterr().err  # plain progress lines off a terminal
    assert not [p for p in (paths.kernels / "debs").rglob("*") if p.is_file()]  # downloads removed once unpacked
    monkeypatch.setenv("LAB_UBUNTU_MAINLINE_URL", "http://127.0.0.1:9/nothing")  # cached: no network needed
    assert kernels.resolve("6.2", paths).release == REL
    monkeypatch.setenv("LAB_UBUNTU_MAINLINE_URL", url + "/")
    other = tmp_path / "www" / "mainline" / "v6.2.1"
    archive[1].parent.rename(other)  # the same build served as v6.2.1: mainline:v6.2.1
    k2 = kernels.resolve("mainline:v6.2.1", paths)
    assert k2.alias == "mainline-v6.2.1" and k2.release == REL


def test_checksum_mismatch_refused_and_nothing_left(archive, tmp_path, monkeypatch):
    url, d, debs = archive
    monkeypatch.setenv("LAB_UBUNTU_MAINLINE_URL", url)
    monkeypatch.delenv("LAB_KERNEL_DEBS", raising=False)
    data = bytearray(debs[1].read_bytes())
    data[-1] ^= 0xFF
    debs[1].write_bytes(bytes(data))
    paths = Paths(cache=tmp_path / "cache")
    with pytest.raises(LabError, match=r"linux-modules-.*sha256 [0-9a-f]{64} does not match CHECKSUMS"):
        kernels.resolve("6.2", paths)
    assert not paths.kernels.exists() or not any(paths.kernels.rglob("*")), list(paths.kernels.rglob("*"))


def test_unreachable_url_gives_the_supply_message(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_UBUNTU_MAINLINE_URL", "http://127.0.0.1:9/mainline")
    monkeypatch.delenv("LAB_KERNEL_DEBS", raising=False)
    paths = Paths(cache=tmp_path / "cache")
    with pytest.raises(LabError) as e:
        kernels.resolve("6.2", paths)
    msg = str(e.value)
    assert "cannot be downloaded on this machine" in msg and "http://127.0.0.1:9/mainline/v6.2/amd64/" in msg
    assert "./labctl kernels.add 6.2 --deb" in msg and "LAB_KERNEL_DEBS" in msg
    assert not paths.kernels.exists()
