"""The nightly's baseline, per kernel: the newest *scheduled* nightly on the *default branch* whose
leg for that kernel succeeded (a red leg elsewhere does not make a night unusable, and a manual or
feature-branch run is never a baseline). .ci/previous gathers what GitHub says (`gh run list` and
each run's jobs) into a directory; `./labctl results.baseline` picks from it; results.summary shows
each kernel's baseline and its age.

The directory holds runs.json (`gh run list --json databaseId,createdAt,url,headSha,event,headBranch`)
and jobs-<id>.json per run (JSON lines of {"name": "bench (6.12)", "conclusion": "success"}).
"""

from __future__ import annotations

import datetime
import json
import re
from pathlib import Path
from typing import Any

from lab.core.config import InputError

LEG = re.compile(r"^bench \(([^,)]+)")


def _jobs(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    text = path.read_text().strip()
    if text.startswith("["):
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def pick(meta: Path, branch: str = "", event: str = "schedule") -> dict[str, dict[str, Any]]:
    """{kernel: {"run_id", "created_at", "url", "sha"}}: per kernel, the newest run (of those listed,
    of `event` on `branch` when the listing records them) whose `bench (kernel)` job succeeded."""
    f = meta / "runs.json"
    if not f.is_file():
        raise InputError(f"no {f}: gather it first (.ci/previous)")
    runs = json.loads(f.read_text())
    runs = [r for r in runs if (not branch or r.get("headBranch", branch) == branch)
            and r.get("event", event) == event]
    runs.sort(key=lambda r: str(r.get("createdAt", "")), reverse=True)
    chosen: dict[str, dict[str, Any]] = {}
    for r in runs:
        rid = r["databaseId"]
        for job in _jobs(meta / f"jobs-{rid}.json"):
            m = LEG.match(str(job.get("name", "")))
            if m and job.get("conclusion") == "success" and m.group(1) not in chosen:
                chosen[m.group(1)] = {"run_id": rid, "created_at": r.get("createdAt", ""), "url": r.get("url", ""),
                                      "sha": r.get("headSha", "")}
    return chosen


def age(created_at: str, now: datetime.datetime | None = None) -> str:
    """'3 d 4 h' / '5 h' since an ISO time (GitHub's `2026-12-06T02:17:00Z`); '?' if unreadable."""
    try:
        t = datetime.datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return "?"
    now = now or datetime.datetime.now(datetime.UTC)
    hours = int((now - t).total_seconds() // 3600)
    return f"{hours // 24} d {hours % 24} h" if hours >= 24 else f"{hours} h"


def markdown(chosen: dict[str, dict[str, Any]], kernels: list[str],
             now: datetime.datetime | None = None) -> str:
    """The summary's baseline table: each kernel's previous nightly, when it started and how old it is."""
    out = ["| kernel | baseline run | started | age |", "|---|---|---|---|"]
    for k in kernels:
        b = chosen.get(k)
        if b:
            link = f"[{b['run_id']}]({b['url']})" if b.get("url") else str(b["run_id"])
            out.append(f"| {k} | {link} | {b['created_at']} | {age(str(b['created_at']), now)} |")
        else:
            out.append(f"| {k} | none: no scheduled nightly on the default branch with this leg green | - | - |")
    return "\n".join(out)
