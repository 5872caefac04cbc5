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


def plant(root: Path, rel: str, code: str) -> None:
    f = root / rel
    f.write_text(f.read_text() + "\n\ndef _planted():\n    " + code + "  # noqa: F401\n")


def lint(root: Path) -> subprocess.CompletedProcess:
    """The checker as lint runs it; -S: no site-packages, so it needs none of the lab's dependencies."""
    return subprocess.run([sys.executable, "-S", "-m", "lab.layers", str(root)], capture_output=True, text=True,
                          cwd=ROOT)


def test_the_tree_keeps_the_rule():
    assert layers.check(ROOT) == []


def test_an_import_from_a_later_layer_fails_lint(tmp_path):
    root = copy_tree(tmp_path)
    plant(root, "lab/results/stats.py", "from lab.report import plots")
    proc = lint(root)
    assert proc.returncode == 1, proc.stderr
    assert "lab/results/stats.py" in proc.stdout and "lab.results imports lab.report.plots" in proc.stdout


def test_an_import_across_the_towers_fails_lint(tmp_path):
    """analysis (data tower) may not import guest (control tower), though guest comes first in no order."""
    root = copy_tree(tmp_path)
    plant(root, "lab/analysis/verdicts.py", "from lab.guest import accel")
    plant(root, "lab/guest/accel.py", "from lab.results import stats")
    proc = lint(root)
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
