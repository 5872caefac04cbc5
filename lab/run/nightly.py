"""What the nightly workflow (.github/workflows/nightly.yml) asks the lab: the kernel matrix as JSON,
a cache key per kernel, the accelerator check, and the Markdown summary of a night's runs.

The workflow never lists kernels or writes summaries itself: every step is a lab task
(kernels.matrix, kernels.cachekey, results.check, results.summary), tested in tests/unit/test_nightly.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lab.core.config import InputError, LabError
from lab.kernels import catalog as kernels
from lab.kernels.sources import SOURCES
from lab.run import playbooks


def matrix(playbook: str = "") -> dict[str, list[str]]:
    """{"kernel": [...]}: every catalog kernel (host included), or a playbook's kernels and targets.
    The shape GitHub Actions takes as a whole matrix: `matrix: ${{ fromJSON(...) }}`."""
    if playbook:
        pb = playbooks.load(playbook)
        names = list(pb.matrix)
        if not names:
            raise InputError(f"playbook {pb.path} has no matrix: add kernels: [...] and/or targets: [host]")
    else:
        _, entries = kernels.catalog()
        names = list(entries)
    return {"kernel": names}


def cache_entries(kernel: str, image: str = "debian-12") -> dict[str, str]:
    """The nightly's two CI caches of the lab cache, each with its key and the directory (relative to
    the lab cache) it holds: the kernel (key: alias, package and version as the archive offers them
    now; kernels/ALIAS/PACKAGE) and the base root image (key: recipe name and hash; images/NAME-HASH),
    which every kernel's leg shares. A new package misses only the kernel cache, a changed recipe only
    the image cache. {} for the host target (no kernel, no image)."""
    import os

    from lab.core.config import Paths
    from lab.guest import images

    _, entries = kernels.catalog()
    entry = entries.get(kernel)
    if entry is None:
        raise LabError(f"kernels.cachekey takes a catalog alias ({', '.join(entries)}), not {kernel!r}")
    key = SOURCES[entry.source].cache_key(entry, Paths())
    if key is None:  # the host target: no kernel, no image
        return {}
    pkg, kdir = key
    variables = {k: v for k, v in {"mirror": os.environ.get("LAB_MIRROR")}.items() if v}
    recipe = images.load_recipe(image, **variables)

    def clean(key: str) -> str:
        return key.replace(":", "_").replace("~", "_")

    image_dir = f"{recipe.name}-{recipe.hash}"
    return {"kernel-key": clean(f"kernel-{kernel}-{pkg}"), "kernel-path": kdir,
            "image-key": clean(f"image-{image_dir}"), "image-path": f"images/{image_dir}"}


def cachekey(kernel: str, image: str = "debian-12") -> str:
    """One key naming both caches of a kernel's leg: its package and version as the archive offers
    them now, and the image recipe's hash ("host" for the host target)."""
    e = cache_entries(kernel, image)
    if not e:
        return "host"
    return f"{kernel}-{e['kernel-key'].removeprefix(f'kernel-{kernel}-')}-{e['image-key'].removeprefix('image-')}"


def check_accelerator(run_dir: Path, want: str) -> str:
    """The run's accelerator if it is `want`, else a LabError saying what the run recorded and why."""
    from lab.results import store as results

    if not (run_dir / "manifest.json").is_file():
        raise LabError(f"{run_dir} is not a run directory (no manifest.json)")
    run = results.load_run(run_dir)
    got = run.accelerator
    if got != want:
        why = run.fact("accelerator_reason") or "no reason recorded"
        raise LabError(f"run {run.run_id} ran under {got}, not {want}: {why}")
    clock = run.fact("clocksource")
    if want == "kvm" and clock != "kvm-clock":
        raise LabError(f"run {run.run_id} says kvm but its guest's clocksource was {clock or 'not recorded'}, not "
                       f"kvm-clock: the guest did not run on KVM's paravirtual clock (re-run it; if it persists, "
                       f"check /dev/kvm on the runner)")
    return got


def compare_previous(run_dirs: list[Path], previous: list[Path]) -> str:
    """results.compare of each run against the previous run of the same kernel alias (the text
    results.compare prints, after the regression report of lab/report/regression.py when a row
    moved), or why there is none."""
    from lab.analysis import compare as comparing
    from lab.results import aggregate
    from lab.results import store as results

    def alias(d: Path) -> str:
        run = results.load_run(d)
        return str(run.fact("kernel_alias") or run.kernel)

    before = {alias(d): d for d in previous}  # list_runs is oldest first: the newest per alias wins
    out = []
    for d in run_dirs:
        k = alias(d)
        if k not in before:
            out.append(f"{k}: no previous run")
            continue
        fa, runs_a = aggregate.load_frame([before[k]])
        fb, runs_b = aggregate.load_frame([d])
        if fa.empty or fb.empty:
            out.append(f"{k}: no valid rows on {'the previous' if fa.empty else 'this'} side")
            continue
        try:
            unit = comparing.check_units(fa, fb)
        except comparing.UnitMismatch as e:
            out.append(f"{k}: {e}")
            continue
        res = comparing.compare(fa, fb)
        same = len(set(fa["kernel"]) | set(fb["kernel"])) == 1
        moved = res["verdict"].fillna("").str.replace(" (emulated)", "", regex=False).isin(comparing.CHANGES)
        if moved.any():  # the kernel-style report first (lab/report/regression.py), then the whole table
            from lab.report import regression

            differ = comparing.param_differences([r.manifest for r in runs_a], [r.manifest for r in runs_b])
            out.append(f"{k}: regression report\n" + regression.render(res, runs_a, runs_b, unit, params_differ=differ))
        out.append(f"{k}:\n" + comparing.format_compare(res, before[k].name, d.name, unit=unit, same_kernel=same))
    return "\n".join(out) + ("\n" if out else "")


def _claims(run_dir: Path) -> list[dict[str, Any]]:
    f = run_dir / "claims.json"
    if not f.is_file():
        return []
    try:
        data = json.loads(f.read_text())
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def _insn_matrix(run_dirs: list[Path]) -> str:
    """The attach type x kernel and map type x kernel tables of the runs in guest instructions
    (lab/analysis/insntable.py), as Markdown; "" when no run counted instructions."""
    from lab.analysis import insntable
    from lab.results import aggregate

    if not run_dirs:
        return ""
    df, _ = aggregate.load_frame(run_dirs)
    return insntable.markdown(insntable.build(df)).strip()


def summary(run_dirs: list[Path], report_dir: Path | None = None, compare_text: str = "",
            baseline: dict[str, dict[str, Any]] | None = None) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: one line per run (kernel, accelerator, status, rows), the
    claims per kernel from the report's claims.json, and the comparison with the previous night
    (with `baseline`, results.baseline's choice: which nightly each kernel is compared with, and its age)."""
    from lab.results import store as results
    from lab.results import unitview
    from lab.run import baseline as bl

    out = ["# Nightly eBPF overhead lab", "", "| run | kernel | accelerator | status | rows | problems |",
           "|---|---|---|---|---|---|"]
    for d in run_dirs:
        run = results.load_run(d)
        out.append(f"| {run.run_id} | {run.kernel} | {unitview.mode(run.accelerator)} | {run.status} | {len(run.rows)} "
                   f"| {len(run.problems)} |")
    if not run_dirs:
        out.append("| (no runs) | | | | | |")
    claims = _claims(report_dir) if report_dir else []
    if claims:
        groups = sorted({str(c.get("group", "")) for c in claims})
        out += ["", "## Claims per kernel", "", "| claim | " + " | ".join(groups) + " |",
                "|---|" + "---|" * len(groups)]
        by: dict[str, dict[str, str]] = {}
        titles: dict[str, str] = {}
        for c in claims:
            key = str(c.get("claim"))
            titles[key] = str(c.get("title", ""))
            by.setdefault(key, {})[str(c.get("group", ""))] = str(c.get("verdict", ""))
        for key, verdicts in by.items():
            out.append(f"| {key}. {titles[key]} | " + " | ".join(verdicts.get(g, "-") for g in groups) + " |")
    insn = _insn_matrix(run_dirs)
    if insn:
        out += ["", "## Kernel matrix in guest instructions", "", insn]
    out += ["", "## Compared with the previous nightly", ""]
    if baseline is not None:
        aliases = [str(results.load_run(d).fact("kernel_alias") or results.load_run(d).kernel) for d in run_dirs]
        out += [bl.markdown(baseline, list(dict.fromkeys(aliases)) or sorted(baseline)), ""]
    out += ["```", compare_text.strip(), "```"] if compare_text.strip() else ["No previous nightly to compare with."]
    return "\n".join(out) + "\n"


UPLOADABLE = ("complete", "partial", "failed", "interrupted")


def stage(store: Path, out: Path) -> tuple[list[str], list[str]]:
    """Copy to `out` the runs of `store` that ended and said so (status complete, partial, failed or
    interrupted): what a nightly leg uploads. A run whose manifest still says `running` (its lab was
    killed before it could mark it, or is still writing) is left out. Returns (copied, left out: why)."""
    import shutil

    from lab.results import store as results

    out.mkdir(parents=True, exist_ok=True)
    copied, left = [], []
    for d in results.list_runs(store):
        status = results.load_run(d).status
        if status in UPLOADABLE:
            shutil.copytree(d, out / d.name, dirs_exist_ok=True)
            copied.append(d.name)
        else:
            left.append(f"{d.name}: status {status}, not finished or marked")
    return copied, left
