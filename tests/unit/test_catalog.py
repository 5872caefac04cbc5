"""Kernel catalog across Debian suites: the lab's private apt configuration, both package layouts.

The archive test is real: a signed apt repository served over HTTP on 127.0.0.1 (a key made for
the test, real apt-get update/download, real signature checks), with the split layout of newer
Debian kernels (a linux-image-* meta package over linux-binary-* and linux-modules-*)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import os
import subprocess
import threading
from pathlib import Path

import pytest
from conftest import make_deb

from lab.core.config import LabError, Paths
from lab.kernels import catalog as kernels
from lab.kernels import debarchive


def _signed_repo(tmp: Path, suite: str, debs_dir: Path) -> Path:
    """A flat-enough Debian repository (dists/SUITE/main/binary-amd64) signed with a fresh key;
    returns the public keyring."""
    gnupg = tmp / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(gnupg))
    subprocess.run(["gpg", "--batch", "--passphrase", "", "--quick-gen-key", "lab test archive <t@t>",
                    "ed25519", "sign", "1d"], env=env, check=True, capture_output=True)
    pool = tmp / "repo" / "pool"
    pool.mkdir(parents=True)
    for d in debs_dir.glob("*.deb"):
        os.link(d, pool / d.name)
    bdir = tmp / "repo" / "dists" / suite / "main" / "binary-amd64"
    bdir.mkdir(parents=True)
    pk = subprocess.run(["dpkg-scanpackages", "-m", "pool", "/dev/null"], cwd=tmp / "repo",
                        check=True, capture_output=True).stdout
    (bdir / "Packages").write_bytes(pk)
    (bdir / "Packages.gz").write_bytes(gzip.compress(pk))
    lines = [f"Suite: {suite}", f"Codename: {suite}", "Architectures: amd64", "Components: main",
             "Date: Fri, 27 Nov 2026 00:00:00 UTC", "SHA256:"]
    for f in ("Packages", "Packages.gz"):
        data = (bdir / f).read_bytes()
        lines.append(f" {hashlib.sha256(data).hexdigest()} {len(data)} main/binary-amd64/{f}")
    rel = tmp / "repo" / "dists" / suite / "Release"
    rel.write_text("\n".join(lines) + "\n")
    subprocess.run(["gpg", "--batch", "--yes", "--clearsign", "-o", str(rel.with_name("InRelease")), str(rel)],
                   env=env, check=True, capture_output=True)
    keyring = tmp / "archive-key.gpg"
    keyring.write_bytes(subprocess.run(["gpg", "--export"], env=env, check=True, capture_output=True).stdout)
    subprocess.run(["gpgconf", "--kill", "all"], env=env, capture_output=True)  # gpg left its agent running
    return keyring


@pytest.fixture
def http_repo(tmp_path):
    """Serves tmp_path/repo on 127.0.0.1 for the test's duration; yields the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "repo"))

    class Quiet(http.server.ThreadingHTTPServer):
        pass

    (tmp_path / "repo").mkdir(exist_ok=True)
    srv = Quiet(("127.0.0.1", 0), lambda *a: handler(*a))
    srv.RequestHandlerClass.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()
    t.join(5)


def test_split_layout_kernel_from_a_signed_archive_over_http(tmp_path, http_repo, monkeypatch):
    rel = "7.9.1+deb14-amd64"
    debs = tmp_path / "debs"
    debs.mkdir()
    make_deb(debs, f"linux-image-{rel}", "7.9.1-1", {}, depends=f"linux-binary-{rel} (= 7.9.1-1)")
    make_deb(debs, f"linux-binary-{rel}", "7.9.1-1", {f"usr/lib/modules/{rel}/vmlinuz": b"not a real kernel"})
    make_deb(debs, f"linux-modules-{rel}", "7.9.1-1",
         {f"usr/lib/modules/{rel}/kernel/fs/9p/9p.ko": b"\0", f"usr/lib/modules/{rel}/modules.order": b""})
    make_deb(debs, "linux-image-7.8.0+deb14-amd64", "7.8.0-1", {"boot/vmlinuz-7.8.0+deb14-amd64": b"older"})
    keyring = _signed_repo(tmp_path, "unstable", debs)
    monkeypatch.setattr(debarchive, "MIRROR", http_repo)
    paths = Paths(cache=tmp_path / "cache")
    suite = debarchive.Suite("unstable", paths.cache)
    suite.keyring.parent.mkdir(parents=True)
    suite.keyring.write_bytes(keyring.read_bytes())  # trust the test's key, not Debian's

    entry = kernels.CatalogEntry(alias="latest", source="debian", suite="unstable",
                                 package="linux-image-[0-9]*-amd64", exclude=("*-rt-amd64",))
    s, name, pkgs = kernels.debian_packages(entry, paths)
    assert name == f"linux-image-{rel}"  # natural order: 7.9.1 is newer than 7.8.0
    assert pkgs == [f"linux-binary-{rel}", f"linux-modules-{rel}"]
    k = kernels.fetch_debian(entry, paths)
    assert k.release == rel
    assert k.vmlinuz.as_posix().endswith(f"usr/lib/modules/{rel}/vmlinuz")
    assert k.modules and (k.modules / "modules.dep").exists()  # depmod ran on the split tree
    assert k.extra["suite"] == "unstable" and k.extra["version"] == "7.9.1-1"
    assert not list(paths.kernels.glob("*/*.tmp"))
    # the private configuration lives in the cache and never names /etc/apt's sources
    src = (suite.dir / "sources.list").read_text()
    assert http_repo in src and str(suite.keyring) in src
    assert "/etc/apt" not in " ".join(suite.options())


def test_unsigned_archive_is_refused(tmp_path, http_repo, monkeypatch):
    debs = tmp_path / "debs"
    debs.mkdir()
    make_deb(debs, "linux-image-7.9.1+deb14-amd64", "7.9.1-1", {"boot/vmlinuz-7.9.1+deb14-amd64": b"x"})
    _signed_repo(tmp_path, "unstable", debs)
    monkeypatch.setattr(debarchive, "MIRROR", http_repo)
    paths = Paths(cache=tmp_path / "cache")
    # the suite's keyring is Debian's (copied from the host), which did not sign this repository
    with pytest.raises(LabError, match="apt-get update for Debian unstable failed"):
        debarchive.Suite("unstable", paths.cache).update()


def test_unreachable_mirror_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(debarchive, "MIRROR", "http://127.0.0.1:9")
    monkeypatch.setattr(debarchive, "SECURITY", "http://127.0.0.1:9")
    entry = kernels.CatalogEntry(alias="5.10", source="debian", suite="bullseye", package="linux-image-5.10.0-*-amd64")
    with pytest.raises(LabError) as e:
        kernels.fetch_debian(entry, Paths(cache=tmp_path / "cache"))
    assert "LAB_DEBIAN_MIRROR" in str(e.value)


def test_catalog_names_every_debian_suite():
    _, entries = kernels.catalog()
    suites = {a: e.suite for a, e in entries.items() if e.source == "debian"}
    assert suites == {"5.10": "bullseye", "6.1": "bookworm", "6.12": "bookworm", "latest": "unstable",
                      "next": "experimental"}


@pytest.mark.network
def test_debian_archive_offers_every_catalog_kernel():
    """The real archive (through the lab's cache): every downloadable alias resolves to a package."""
    _, entries = kernels.catalog()
    for alias, e in entries.items():
        if e.source != "debian":
            continue
        suite, name, pkgs = kernels.debian_packages(e, Paths())
        assert name.startswith("linux-image-"), alias
        assert suite.version(pkgs[0]), (alias, pkgs)


def test_a_path_kernel_gets_a_short_stable_lab_name(tmp_path):
    from lab.run.labs import lab_name

    deb = make_deb(tmp_path, "linux-image-6.9.0-1-amd64", "6.9.0-1", {"boot/vmlinuz-6.9.0-1-amd64": b"x"})
    paths = Paths(cache=tmp_path / "cache")
    assert lab_name(str(deb), paths) == "6.9.0-1-amd64"  # the release, not the file name
    assert lab_name("latest", paths) == "latest" and lab_name("5.10", paths) == "5.10"
