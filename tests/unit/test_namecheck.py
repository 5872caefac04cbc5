"""lab/namecheck.py: no registry name is compared outside its registry on this tree, and a planted
comparison of each noun (an attach type, a map type, a kernel source) fails lint, naming the place."""

import shutil
import subprocess
import sys
from pathlib import Path

from lab import namecheck

ROOT = Path(__file__).resolve().parents[2]


def copy_tree(tmp: Path) -> Path:
    for d in ("lab", "benchmarks"):
        shutil.copytree(ROOT / d, tmp / d, ignore=shutil.ignore_patterns("__pycache__"))
    return tmp


def test_the_tree_branches_on_no_registry_name():
    assert namecheck.check(ROOT) == []
    names = namecheck.entry_names(ROOT)
    assert {"kprobe", "xdp_drv", "fmod_ret", "perf_event"} <= names["attach type"]
    assert {"hash", "percpu_array"} <= names["map type"] and names["kernel source"] == {"debian", "ubuntu", "host"}


def test_planted_branches_fail_lint(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "lab" / "report" / "tables.py"
    f.write_text(f.read_text() + "\n\ndef _planted(hook, row, e):\n"
                 "    if hook == 'xdp_drv' or row['map_type'] in ('hash', 'lru_hash'):\n"
                 "        return e.source != 'debian'\n")
    proc = subprocess.run([sys.executable, "-S", "-m", "lab.namecheck", str(root)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert any("lab/report/tables.py" in x and "attach type with xdp_drv" in x for x in lines), lines
    assert any("map type with hash, lru_hash" in x for x in lines) and any("kernel source with debian" in x
                                                                          for x in lines)
    assert all("lab/agent/hooks/table.py" in x or "lab/agent/maps/registry.py" in x or "lab/kernels/sources.py" in x
               for x in lines)  # each line names the registry to add the attribute to


def test_a_registry_may_compare_its_own_names(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "lab" / "agent" / "hooks" / "table.py"
    f.write_text(f.read_text() + "\n\ndef _own(hook):\n    return hook == 'xdp_drv'\n")
    assert namecheck.check(root) == []
