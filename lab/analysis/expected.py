"""What a run asked for, so a claim's parts come from the request and not from the rows that happen
to exist: a combination that was asked for and has no ok row (missing, refused, or lost with the
suite's error row) is a part that is `not measurable here`, and a claim never holds on a subset.

A part spec's `expect` maps a `per` or `series` field to the playbook parameter that lists its
values ("tools.tools": suite tools, parameter tools) or to a literal list. The parameters come from
each run's manifest (`suites`), with the agent's defaults where the playbook left one out; the runs
of one target group are united. `why_missing` says in words why a side has no row.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Mapping
from typing import Any

from lab.agent.tools.registry import TOOLS
from lab.results.aggregate import group_label
from lab.results.store import LoadedRun

Params = dict[str, dict[str, Any]]  # suite -> its parameters, as the playbook gave them
# The agent's defaults for the parameters a claim may expect (lab/agent/hooks/suite.py, maps/suite.py, tools/suite.py).
DEFAULTS: dict[str, Any] = {
    "hooks.hooks": None,  # every hook
    "hooks.variants": ["body", "empty"],
    "hooks.freqs": [99, 999, 9999],
    "hooks.perf_events": ["sw", "hw"],
    "hooks.kernel_batch": True,
    "maps.collision_keys": [64],
    "maps.collision_max_entries": 1024,
    "tools.tools": list(TOOLS),
}


def _group_of(run: LoadedRun) -> str | None:
    for r in run.rows:
        try:
            return group_label(r["kernel"], r["accelerator"], r["cpu_model"], r["vcpus"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def asked(runs: Iterable[LoadedRun]) -> dict[str, Params]:
    """Per target group, the suites its runs asked for and their parameters (lists united)."""
    out: dict[str, Params] = {}
    for run in runs:
        group = _group_of(run)
        suites = run.manifest.get("suites")
        if group is None or not isinstance(suites, dict):
            continue
        mine = out.setdefault(group, {})
        for suite, params in suites.items():
            have = mine.setdefault(suite, {})
            for k, v in (params or {}).items():
                if isinstance(v, list) and isinstance(have.get(k), list):
                    have[k] = have[k] + [x for x in v if x not in have[k]]
                else:
                    have.setdefault(k, v)
    return out


def param(params: Params, name: str) -> tuple[bool, Any]:
    """(asked, value) of "suite.param": asked is False when no run of the group ran that suite."""
    suite, _, key = name.partition(".")
    if suite not in params:
        return False, None
    return True, params[suite].get(key, DEFAULTS.get(name))


def values(expect: Mapping[str, Any], params: Params | None) -> dict[str, list[Any]]:
    """The values each expected field must take in this group: field -> list (fields whose suite
    was not run, or whose parameter means 'all', are left out: their values come from the rows)."""
    out: dict[str, list[Any]] = {}
    for field, source in expect.items():
        if isinstance(source, list):
            out[field] = list(source)
            continue
        ran, v = param(params or {}, str(source))
        if ran and v is not None:
            out[field] = list(v) if isinstance(v, list) else [v]
    return out


def why_missing(sel: Mapping[str, Any], params: Params | None) -> str:
    """Why no row matches a side's selectors, in words."""
    what = ", ".join(f"{k} {v}" for k, v in sel.items() if k != "suite")
    suite = sel.get("suite")
    if params is not None and suite and suite not in params:
        return f"not measured: these runs did not run the {suite} suite ({what})"
    p = (params or {}).get(str(suite), {})
    checks = (("hook", "hooks.hooks"), ("variant", "hooks.variants"), ("tool", "tools.tools"))
    for field, name in checks:
        _, v = param(params or {}, name)
        if field in sel and isinstance(v, list) and sel[field] not in v:
            return f"not measured: the playbook did not ask for {field} {sel[field]} ({what})"
    if sel.get("method") == "kernel_batch" and p and not p.get("kernel_batch", True):
        return f"not measured: the playbook turned kernel_batch off ({what})"
    return f"no row recorded for {what}"


def _errno_words(reason: str) -> str:
    """The first errno message in a kernel or libbpf text, as 'message, NAME' ('' if none)."""
    hits = []
    for code, name in errno.errorcode.items():
        msg = os.strerror(code)
        at = reason.find(msg)
        if at >= 0:
            hits.append((at, -len(msg), f"{msg}, {name}"))
    if not hits and "ENOTSUPP" in reason:
        return "not supported, ENOTSUPP"
    return min(hits)[2] if hits else ""


def in_words(row: Mapping[str, Any]) -> str:
    """One plain sentence for a row that is not ok: what it is, and why it has no figure."""
    def shown(k: str) -> str:
        v = row.get(k)
        if v in (None, "") or (isinstance(v, float) and v != v):
            return ""
        return f"{int(v)} Hz" if k == "freq_hz" else str(v)

    what = " ".join(filter(None, map(shown, ("hook", "tool", "map_type", "method", "freq_hz"))))
    what = what or f"the {row.get('suite', '')} suite".strip()
    reason, status = str(row.get("reason") or ""), str(row.get("status"))
    gated = row.get("gated")
    if isinstance(gated, list) and gated:
        return f"{what}: gated on read, {gated[0]}"
    if status == "unsupported":
        why = _errno_words(reason)
        return f"{what}: this kernel refused it" + (f" ({why})" if why else f" ({reason[:100]})")
    return f"{what}: {status}" + (f" ({reason[:120]})" if reason else "")
