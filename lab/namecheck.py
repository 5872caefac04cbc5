"""Every noun's behaviour in its registry, checked: `python -m lab.namecheck [ROOT]` (part of `./labctl
lint`). Standard library only.

A registry owns every behaviour of its entries (docs/extending.md): the attach types (`HOOKS`,
lab/agent/hooks/table.py), the map types (`MAP_TYPES`, lab/agent/maps/registry.py) and the kernel
sources (`SOURCES`, lab/kernels/sources.py). Code elsewhere that compares a value of that noun with one
entry's name (`hook == "xdp_drv"`, `e.source in ("debian", "ubuntu")`, `map_type == "hash"`) is a
behaviour outside its registry: the next entry of the same kind would not get it. Such a comparison
is refused; the fix is an attribute on the registry's entry that the code tests instead. What counts
as "a value of that noun" is a name, attribute or string subscript whose last word names it (hook,
map_type, source). Exit 1 with one line per place, else 0.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

# noun: (its registry's file, the words that name a value of it)
REGISTRIES = {
    "attach type": ("lab/agent/hooks/table.py", r"^hooks?$"),
    "map type": ("lab/agent/maps/registry.py", r"^(map_type|mtype)$"),
    "kernel source": ("lab/kernels/sources.py", r"^source$"),
}


def entry_names(root: Path) -> dict[str, set[str]]:
    """Each registry's entry names, read from its file without importing it: the string keys of its
    top-level dict (HOOKS, MAP_TYPES) or the `name` of each class in it (kernel sources)."""
    out: dict[str, set[str]] = {}
    for noun, (rel, _) in REGISTRIES.items():
        tree = ast.parse((root / rel).read_text())
        names: set[str] = set()
        by_class = rel.endswith("sources.py")  # kernel sources are classes; the others dict entries
        for node in ast.walk(tree):
            if by_class and isinstance(node, ast.ClassDef):  # name = "debian" / name, what = "debian", "..."
                for st in node.body:
                    if isinstance(st, ast.Assign) and st.targets:
                        t, v = st.targets[0], st.value
                        if isinstance(t, ast.Name) and t.id == "name" and isinstance(v, ast.Constant):
                            names.add(str(v.value))
                        if isinstance(t, ast.Tuple) and isinstance(v, ast.Tuple):
                            for a, b in zip(t.elts, v.elts, strict=False):
                                if isinstance(a, ast.Name) and a.id == "name" and isinstance(b, ast.Constant):
                                    names.add(str(b.value))
            elif by_class:
                continue
            elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[1], ast.Call):
                k = node.elts[0]  # ("kprobe", Hook(...)) in an OrderedDict([...])
                if isinstance(k, ast.Constant) and isinstance(k.value, str):
                    names.add(k.value)
            elif isinstance(node, ast.Dict):  # {"hash": MapType(...)}
                for k, v in zip(node.keys, node.values, strict=False):
                    if isinstance(k, ast.Constant) and isinstance(k.value, str) and isinstance(v, ast.Call):
                        names.add(k.value)
        out[noun] = {n for n in names if n}
    return out


def _strings(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    return []


def _word(node: ast.AST) -> str:
    """The last word of a name, attribute or string subscript (`e.source` -> source, `r["hook"]` -> hook)."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        return node.slice.value
    return ""


def check(root: Path) -> list[str]:
    names = entry_names(root)
    homes = {noun: root / rel for noun, (rel, _) in REGISTRIES.items()}
    problems = []
    files = sorted(p for d in ("lab", "benchmarks") for p in (root / d).rglob("*.py") if "__pycache__" not in p.parts)
    for f in files:
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            consts = [s for side in sides for s in _strings(side)]
            words = {_word(side) for side in sides if not _strings(side)}
            for noun, (_, pattern) in REGISTRIES.items():
                if f == homes[noun] or not any(re.match(pattern, w) for w in words):
                    continue
                hit = sorted(set(consts) & names[noun])
                if hit:
                    problems.append(f"{f.relative_to(root)}:{node.lineno}: compares a {noun} with "
                                    f"{', '.join(hit)}: give its registry entry an attribute to test instead "
                                    f"({REGISTRIES[noun][0]})")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    problems = check(root)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
