"""The tool suite's command-line options (`./labctl bench.tools` / `bench.all` / `bench.run`): the
user's tools and the precision asked for, written into a playbook derived from the one named, so a
matrix's child jobs and the run's manifest see exactly what ran.

  --tool NAME=COMMAND        a command already in the target (repeatable)
  --tool NAME=push:PATH [ARGS]   a local executable (or directory, with exec) pushed with the agent
  --bpftrace 'PROGRAM'       a bpftrace program, run by the target's bpftrace (named bpftrace, bpftrace2, ...)
  --load cpu,switch          the stressors the user's tools above watch (default: the suite's generic load)
  --halfwidth H              add ABBA pairs until the loss's interval is within +-H points (tools/precision.py)
  --budget S                 ... or S seconds per tool have gone (default 600)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import yaml

from lab.core.config import InputError, Paths
from lab.run import playbooks


def parse_tool(text: str) -> tuple[str, Any]:
    """NAME=COMMAND or NAME=push:PATH [ARGS] -> (name, user_tools spec)."""
    name, sep, command = text.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise InputError(f"--tool {text!r}: give NAME=COMMAND (a command in the target) or NAME=push:PATH "
                         "(a local executable pushed with the agent)")
    name, command = name.strip(), command.strip()
    if command.startswith("push:"):
        path, _, args = command[len("push:"):].partition(" ")
        spec: dict[str, Any] = {"push": str(Path(path).expanduser().resolve())}
        if args.strip():
            spec["args"] = args.strip()
        return name, spec
    return name, command


def overrides(tool: list[str] | None = None, bpftrace: list[str] | None = None, load: str = "",
              halfwidth: float | None = None, budget: int | None = None) -> dict[str, Any]:
    """The tools suite parameters the options give (empty: none given)."""
    users: dict[str, Any] = {}
    for t in tool or []:
        name, spec = parse_tool(t)
        if name in users:
            raise InputError(f"--tool {name}: given twice")
        users[name] = spec
    for i, prog in enumerate(bpftrace or []):
        users["bpftrace" if i == 0 else f"bpftrace{i + 1}"] = {"bpftrace": prog}
    stressors = [s.strip() for s in load.split(",") if s.strip()] if load else []
    if stressors and not users:
        raise InputError("--load names the load of the tools given with --tool/--bpftrace: give one")
    out: dict[str, Any] = {}
    if users:
        out["user_tools"] = {n: (dict(usertool_spec(s), load=stressors) if stressors else s) for n, s in users.items()}
    if halfwidth is not None:
        out["halfwidth"] = float(halfwidth)
    if budget is not None:
        out["budget_s"] = int(budget)
    return out


def usertool_spec(spec: Any) -> dict[str, Any]:
    return {"command": spec} if isinstance(spec, str) else dict(spec)


def derive(playbook: str, over: dict[str, Any], paths: Paths | None = None, suite: str = "tools") -> str:
    """The playbook with the tools suite's parameters updated by `over` (user_tools merged), written
    to <cache>/playbooks/ and checked like any playbook; returns its path (the name if `over` is empty)."""
    if not over:
        return playbook
    paths = paths or Paths()
    src = playbooks.load(playbook).path  # checked first: a playbook that does not parse is refused as it is
    data = yaml.safe_load(src.read_text()) or {}
    suites = data.setdefault("suites", {}) or {}
    data["suites"] = suites
    tools = dict(suites.get(suite) or {})
    users = dict(tools.get("user_tools") or {})
    users.update(over.get("user_tools") or {})
    tools.update({k: v for k, v in over.items() if k != "user_tools"})
    if users:
        tools["user_tools"] = users
    suites[suite] = tools
    data["name"] = f"{data.get('name', src.stem)}+{suite}"
    text = yaml.safe_dump(data, sort_keys=False)
    out = paths.cache / "playbooks" / f"{src.stem}-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f"{out.name}.{os.getpid()}")
    tmp.write_text(f"# derived from {src} by the command line's tool options (lab/run/tooloptions.py)\n" + text)
    tmp.replace(out)
    playbooks.load(str(out))  # checked now, before anything is built or booted
    return str(out)
