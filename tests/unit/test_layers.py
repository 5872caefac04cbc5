"""lab/layers.py: the layer rule (two towers meeting in run) holds on this tree, and a planted import
against it (a later layer, the other tower), a planted import circle and a planted #include circle each
fail the check (exit 1, one line naming the file)."""

import shutil
import subprocess
import sys
from pathlib import Path

from lab import layers

ROOT = Path(__file__).resolve().parents[2]


def copy_tree(tmp: Path) -> Path:
    shutil.copytree(ROOT / "lab", tmp / "lab", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "bpf", tmp / "bpf")
    return tmp


def test_the_tree_keeps_the_rule():
    assert layers.check(ROOT) == []


def test_an_import_from_a_later_layer_fails_lint(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "lab" / "results" / "stats.py"
    f.write_text(f.read_text() + "\n\ndef _planted():\n    from lab.report import plots  # noqa: F401\n")
    # -S: no site-packages, so the checker runs without the lab's dependencies (invoke, yaml, pandas)
    proc = subprocess.run([sys.executable, "-S", "-m", "lab.layers", str(root)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert "lab/results/stats.py" in proc.stdout and "lab.results imports lab.report.plots" in proc.stdout


def test_an_import_across_the_towers_fails_lint(tmp_path):
    """analysis (data tower) may not import guest (control tower), though guest comes first in no order."""
    root = copy_tree(tmp_path)
    f = root / "lab" / "analysis" / "verdicts.py"
    f.write_text(f.read_text() + "\n\ndef _planted():\n    from lab.guest import accel  # noqa: F401\n")
    g = root / "lab" / "guest" / "accel.py"
    g.write_text(g.read_text() + "\n\ndef _planted():\n    from lab.results import stats  # noqa: F401\n")
    proc = subprocess.run([sys.executable, "-S", "-m", "lab.layers", str(root)], capture_output=True, text=True,
                          cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert "lab/analysis/verdicts.py" in proc.stdout and "lab.analysis imports lab.guest.accel" in proc.stdout
    assert "lab/guest/accel.py" in proc.stdout and "lab.guest imports lab.results.stats" in proc.stdout


def test_the_agent_may_not_import_the_host_side(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "lab" / "agent" / "schema.py"
    f.write_text(f.read_text() + "\nfrom lab.core import units  # noqa: E402,F401\n")
    assert any("guest agent imports lab.core.units" in p for p in layers.check(root))


def test_an_import_circle_within_a_layer_fails(tmp_path):
    root = copy_tree(tmp_path)
    f = root / "lab" / "core" / "units.py"
    f.write_text(f.read_text() + "\n\ndef _planted():\n    from lab.core import interrupt  # noqa: F401\n")
    g = root / "lab" / "core" / "interrupt.py"
    g.write_text(g.read_text() + "\n\ndef _planted():\n    from lab.core import units  # noqa: F401\n")
    problems = layers.check(root)
    assert "import circle: lab.core.interrupt -> lab.core.units -> lab.core.interrupt" in problems


def test_an_include_circle_fails(tmp_path):
    root = copy_tree(tmp_path)
    (root / "bpf" / "a.h").write_text('#include "b.h"\n')
    (root / "bpf" / "b.h").write_text('#include "a.h"\n')
    assert "#include circle: a.h -> b.h -> a.h" in layers.check(root)
