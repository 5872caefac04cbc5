"""Shared test helpers."""

from __future__ import annotations

import json
import os
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lab.core.config import ROOT
from lab.run import suites as bench
from lab.run.labs import Lab

PLAYBOOKS = Path(__file__).resolve().parent / "fixtures" / "playbooks"  # the tests' own playbooks
CHROMIUM = "/usr/bin/chromium"
# The guest tests' sizes are in real time (blocks of ms, loads of seconds) and check the pipeline:
# they run under plain TCG where KVM does not work. Under icount a guest second is a billion
# instructions (~10 s here); tests/vm/test_icount_vm.py asks for icount by name (its playbook's vm.accel).
os.environ.setdefault("LAB_ACCEL", "tcg")


def run_rows(suites: list[str], kernel: str, playbook: str, results: Path,
             report: bool = False, accel: str = "") -> tuple[object, dict[str, list[dict]]]:
    """Run suites through lab.run.suites (the `inv bench.*` path) with results under `results`;
    returns the run store and each suite's rows."""
    old = os.environ.get("LAB_RESULTS")
    os.environ["LAB_RESULTS"] = str(results)
    try:
        store = bench.run(suites, kernel=kernel, playbook=playbook, report=report, accel=accel)
    finally:
        if old is None:
            os.environ.pop("LAB_RESULTS")
        else:
            os.environ["LAB_RESULTS"] = old
    rows = {}
    for s in suites:
        f = store.rows_file(s)
        rows[s] = [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []
    return store, rows


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.imgs: list[str] = []
        self.tables = 0
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag == "table":
            self.tables += 1
        if "id" in a:
            self.ids.add(a["id"])


def parse(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text())
    return p


def screenshot(html: Path, png: Path, tmp: Path) -> None:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp / 'chromium-profile'}", "--window-size=1280,3000",
           f"--screenshot={png}", f"file://{html}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def make_deb(out_dir: Path, name: str, version: str, files: dict[str, bytes], depends: str = "") -> Path:
    """A real .deb (dpkg-deb -b) holding `files` (path in the package -> bytes)."""
    root = out_dir / f"src-{name}"
    (root / "DEBIAN").mkdir(parents=True)
    dep = f"Depends: {depends}\n" if depends else ""
    (root / "DEBIAN/control").write_text(f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n{dep}"
                                         "Maintainer: lab tests <t@t>\nDescription: test package\n")
    for rel, data in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    deb = out_dir / f"{name}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def labs():
    """Labs a test starts: stopped afterwards (and forgotten when they belong to another checkout)."""
    started: list[Lab] = []
    yield started
    for lab in started:
        lab.down(log=lambda m: None)
        if lab.paths.root != ROOT:  # another "checkout" made by the test: leave nothing of it
            lab.forget(log=lambda m: None)
            lab.paths.labs.rmdir()
