"""The registries against what is built: every attach type has its programs in the built BPF objects
and its workload a mode in the C helper that runs it; every map type is in the map helper's table;
the agent's copy of a C constant matches the header; the catalog names only known kernel sources."""

import re
import subprocess
from pathlib import Path

import pytest

from lab.agent.hooks import table
from lab.agent.maps import registry as map_registry
from lab.agent.maps import suite as map_suite
from lab.core.config import ROOT, Paths
from lab.guest.bpfbuild import build_bpf
from lab.kernels import catalog, sources

# where each workload's programs are and which helper runs it (the helper's mode is the workload)
WORKLOADS = {
    "open": ("hook_open.bpf.o", ("empty", "body", "heavy"), "hookbench"),
    "batch": ("hook_batch.bpf.o", ("empty", "body", "count"), "batchbench"),
    "uprobe": ("hook_uprobe.bpf.o", ("empty", "body", "heavy"), "hookbench"),
    "perf": ("hook_perf.bpf.o", ("empty", "body", "heavy"), "hookbench"),
    "net": ("hook_net.bpf.o", ("empty", "body", "heavy"), "hookbench"),
}


@pytest.fixture(scope="module")
def built() -> Path:
    paths = Paths()
    build_bpf(paths)
    return paths.build / "bpf"


def functions(obj: Path) -> set[str]:
    out = subprocess.run(["llvm-nm", "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    return {line.split()[-1] for line in out.splitlines() if line.split()[1:2] in (["T"], ["t"])}


def has_string(binary: Path, s: str) -> bool:
    """Whether a static binary holds the C string s (maybe as the tail of a longer one: the linker
    merges string tails)."""
    return s.encode() + b"\0" in binary.read_bytes()


def test_every_workload_is_known_here():
    assert {w for h in table.HOOKS.values() for w in h.workloads} == set(WORKLOADS)


@pytest.mark.host
@pytest.mark.parametrize("hook", list(table.HOOKS))
def test_every_attach_type_has_its_programs_and_helper_mode(built, hook):
    entry = table.HOOKS[hook]
    for workload in entry.workloads:
        obj, variants, helper = WORKLOADS[workload]
        have = functions(built / obj)
        missing = [f"{entry.prog}_{v}" for v in variants if f"{entry.prog}_{v}" not in have]
        assert not missing, f"{hook} ({workload}): {', '.join(missing)} not in {obj}"
        assert (built / helper).exists()
        if helper == "hookbench":
            assert has_string(built / helper, workload), f"hookbench has no mode {workload!r}"


@pytest.mark.host
def test_every_map_type_is_in_the_map_helper(built):
    missing = [t for t in map_registry.MAP_TYPES if not has_string(built / "mapbench", t)]
    assert not missing, f"map types not in mapbench's table: {missing}"


def test_bounded_loops_matches_the_c_header():
    headers = [p for p in (ROOT / "bpf").rglob("*.h") if "MB_BOUNDED_LOOPS" in p.read_text()]
    defined = {int(m) for p in headers for m in re.findall(r"#define\s+MB_BOUNDED_LOOPS\s+(\d+)", p.read_text())}
    assert defined == {map_suite.BOUNDED_LOOPS}


def test_the_catalog_names_only_known_sources():
    _, entries = catalog.catalog()
    assert {e.source for e in entries.values()} <= set(sources.SOURCES)


def test_an_unknown_source_is_refused_in_words(tmp_path, monkeypatch):
    bad = tmp_path / "kernels.yaml"
    bad.write_text("default: x\nkernels:\n  x:\n    source: gentoo\n")
    monkeypatch.setattr(catalog, "CATALOG_FILE", bad)
    with pytest.raises(Exception, match="source 'gentoo': known sources are debian, ubuntu, host"):
        catalog.catalog()
