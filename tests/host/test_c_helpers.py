"""The C helpers' shape (bpf/helpers/): per helper, its files call each other one way only (no
circle), no file exports mutable state (only the const tables of modes), and there is one die(),
in helpers/common. Each part is compiled on its own and read with nm, the way the linker sees it.
Also: a helper runs the object its skeleton embeds, and refuses an --obj that is not that object.
"""

import re
import subprocess

import pytest

from lab.core.config import ROOT, Paths
from lab.guest.bpfbuild import build_bpf

pytestmark = pytest.mark.host

TOOLS = ROOT / "bpf" / "helpers"
HELPERS = sorted(p.name for p in TOOLS.iterdir() if (p / "main.c").exists())


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """{helper: {part: (defined functions, {global data: its section}, undefined symbols)}}, common/
    included."""
    paths = Paths()
    build_bpf(paths)
    out = tmp_path_factory.mktemp("parts")
    found = {}
    for helper in HELPERS + ["common"]:
        found[helper] = {}
        for src in sorted((TOOLS / helper).glob("*.c")):
            obj = out / f"{helper}-{src.stem}.o"
            subprocess.run(["cc", "-O2", "-c", f"-I{TOOLS}", f"-I{TOOLS / 'common'}", f"-I{TOOLS / helper}",
                            f"-I{paths.build / 'bpf-skel'}", "-o", str(obj), str(src)], check=True)
            table = subprocess.run(["objdump", "-t", str(obj)], capture_output=True, text=True, check=True).stdout
            funcs, data, undef = set(), {}, set()
            for m in re.finditer(r"^[0-9a-f]+ (.{7}) (\S+)\s+[0-9a-f]+ (\S+)$", table, re.M):
                flags, section, name = m.groups()
                if section == "*UND*":
                    undef.add(name)
                elif flags[0] == "g" and flags[6] == "F":
                    funcs.add(name)
                elif flags[0] == "g" or section == "*COM*":
                    data[name] = section
            found[helper][src.stem] = (funcs, data, undef)
    return found


def test_every_helper_is_a_directory_with_a_main():
    assert HELPERS == ["batchbench", "hookbench", "mapbench", "mapcount"]
    assert not list(TOOLS.glob("*.c")), "a helper is a directory tools/NAME/ with main.c"


def find_circle(calls):
    """A path that comes back to where it started in the graph {node: {nodes it calls}}, or []."""
    done, stack = set(), []

    def visit(node):
        if node in stack:
            return stack[stack.index(node):] + [node]
        if node in done:
            return []
        stack.append(node)
        for other in sorted(calls[node]):
            circle = visit(other)
            if circle:
                return circle
        stack.pop()
        done.add(node)
        return []

    for node in sorted(calls):
        circle = visit(node)
        if circle:
            return circle
    return []


def test_find_circle():
    assert find_circle({"main": {"perf"}, "perf": {"trial"}, "trial": set()}) == []
    assert find_circle({"main": {"perf"}, "perf": {"trial"}, "trial": {"main"}}) == ["main", "perf", "trial", "main"]


def test_parts_call_each_other_one_way(parts):
    for helper in HELPERS:
        own = dict(parts[helper], **{"common/" + k: v for k, v in parts["common"].items()})
        where = {f: part for part, (funcs, data, _) in own.items() for f in funcs | set(data)}
        calls = {part: {where[u] for u in undef if u in where and where[u] != part}
                 for part, (_, _, undef) in own.items()}
        circle = find_circle(calls)
        assert not circle, f"{helper}: its parts call each other in a circle: {' -> '.join(circle)}"


def test_no_part_exports_mutable_state(parts):
    for helper, own in parts.items():
        for part, (_, data, _) in own.items():
            # the tables of modes are const: .rodata, or .data.rel.ro where they hold pointers
            mutable = sorted(name for name, section in data.items()
                             if not section.startswith((".rodata", ".data.rel.ro")))
            assert not mutable, f"{helper}/{part}.c exports {mutable}: state belongs to one file (static)"


def test_one_die(parts):
    defined = [f"{helper}/{part}.c" for helper, own in parts.items() for part, (funcs, _, _) in own.items()
               if "die" in funcs]
    assert defined == ["common/bench.c"]


def test_a_helper_refuses_an_object_that_is_not_its_own():
    build_bpf(Paths())
    bpf = Paths().build / "bpf"
    proc = subprocess.run([str(bpf / "hookbench"), "open", "--obj", str(bpf / "hook_uprobe.bpf.o"), "--prog",
                           "uprobe_body"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "is not the object this helper was built with" in proc.stderr
    proc = subprocess.run([str(bpf / "mapbench"), "kern", "-O", str(bpf / "hook_open.bpf.o")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "not the object" in proc.stderr
