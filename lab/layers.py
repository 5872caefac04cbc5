"""The layer rule, checked: `python -m lab.layers [ROOT]` (part of `./labctl lint`). Standard library
only, so it runs without the lab's dependencies (and outside its CLI).

The host side is two towers on a shared base, which meet only in `run` (and `cli` above it):

    control:  core -> kernels -> guest ----\
                                            run -> cli
    data:     core -> results -> analysis -> report --/

`ALLOWED` declares it: each layer and the layers it may import. Every import in lab/ is read, those
inside functions too, and refused are:
- an import of a layer the importer's entry does not list (a later layer, or the other tower);
  lab.agent (the guest agent) imports nothing of the host side, and any layer may import it;
- an import circle between modules, at any depth, and an #include circle among the C headers.
Exit 1 with one line per problem, else 0.
"""

from __future__ import annotations

import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

CONTROL = ("core", "kernels", "guest")  # kernels, images, VMs, remote machines: what runs the agent
DATA = ("core", "results", "analysis", "report")  # rows, statistics, verdicts, pages: what reads its rows
ALLOWED: dict[str, tuple[str, ...]] = {
    "core": (),
    "kernels": ("core",),
    "guest": ("core", "kernels"),
    "results": ("core",),
    "analysis": ("core", "results"),
    "report": ("core", "results", "analysis"),
    "run": (*CONTROL, "results", "analysis", "report"),  # where the towers meet
    "cli": (*CONTROL, "results", "analysis", "report", "run"),
}
LAYERS = tuple(ALLOWED)


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(root: Path, path: Path, modules: set[str]) -> Iterator[tuple[int, str]]:
    """(line, imported lab module) for every import in a file, function-level ones included."""
    name = module_name(root, path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{target}.{alias.name}"
                yield node.lineno, sub if sub in modules else target


def layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def check(root: Path) -> list[str]:
    files = sorted((root / "lab").rglob("*.py"))
    modules = {module_name(root, f) for f in files}
    problems: list[str] = []
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for f in files:
        src = module_name(root, f)
        for line, target in imports(root, f, modules):
            if target != "lab" and not target.startswith("lab."):
                continue
            where = f"{f.relative_to(root)}:{line}"
            if target in modules and target != src and not src.startswith(target + "."):
                graph[src].add(target)
            a, b = layer(src), layer(target)
            if a == "agent":
                if b != "agent":
                    problems.append(f"{where}: the guest agent imports {target} (host side)")
            elif b in ALLOWED and a in ALLOWED and b != a and b not in ALLOWED[a]:
                problems.append(f"{where}: lab.{a} imports {target}, which lab.{a} may not "
                                f"(it may import: {', '.join(ALLOWED[a]) or 'nothing of lab'}; lab/layers.py)")
            elif a and a not in ALLOWED and a not in ("data", "tree", "layers", "namecheck"):
                problems.append(f"{where}: lab.{a} is in no layer: add it to ALLOWED in lab/layers.py")
    problems += [f"import circle: {' -> '.join(c)}" for c in circles(graph)]
    problems += [f"#include circle: {' -> '.join(c)}" for c in circles(includes(root / "bpf"))]
    return problems


def includes(bpf: Path) -> dict[str, set[str]]:
    """Local #include "..." edges among the C sources and headers under bpf/."""
    graph: dict[str, set[str]] = {}
    files = [p for p in bpf.rglob("*") if p.suffix in (".c", ".h")] if bpf.is_dir() else []
    by_name = {p.name: p for p in files}
    for p in files:
        deps = set()
        for m in re.finditer(r'^\s*#\s*include\s+"([^"]+)"', p.read_text(errors="replace"), re.M):
            dep = (p.parent / m.group(1))
            dep = dep if dep.exists() else by_name.get(Path(m.group(1)).name)
            if dep is not None:
                deps.add(str(dep.resolve().relative_to(bpf.resolve())))
        graph[str(p.resolve().relative_to(bpf.resolve()))] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One circle per strongly connected group of more than one node (Tarjan), as a closed path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(path_in(graph, set(group)))

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def path_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A closed path through a strongly connected group, from its first member back to it."""
    start = min(group)
    seen = {start: ""}
    todo = [start]
    while todo:
        v = todo.pop(0)
        for w in sorted(graph.get(v, ())):
            if w == start:
                path = [v]
                while seen[path[-1]]:
                    path.append(seen[path[-1]])
                return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
            if w in group and w not in seen:
                seen[w] = v
                todo.append(w)
    return sorted(group)


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parents[1]
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"layers: {len(problems)} problem(s): see lab/layers.py for the rule", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
