"""results.*: list runs, write reports, compare runs or kernels, export the tidy table."""

from __future__ import annotations

from pathlib import Path

from invoke import Exit, task

from lab.analysis import compare as comparing
from lab.analysis import talkmaps
from lab.core.config import LabError, Paths
from lab.report import page as report
from lab.results import aggregate
from lab.results import store as results


def _store() -> Path:
    return Paths().results


def _resolve(specs: list[str]) -> list[Path]:
    dirs: list[Path] = []
    for spec in specs:
        if Path(spec).is_dir() and not results.is_run(Path(spec)):
            raise Exit(f"error: {spec} is not a run directory (no manifest.json and no rows): give a run id, a "
                       f"kernel or a run's directory (./labctl results.list shows the runs in {_store()})", code=2)
        found = results.select_runs(_store(), spec)
        if not found:
            known = ", ".join(p.name for p in results.list_runs(_store())) or "none"
            raise Exit(f"error: no run or kernel matches {spec!r} in {_store()} (runs: {known})", code=2)
        dirs += [d for d in found if d not in dirs]
    return dirs


@task(name="list", help={"json_": "one JSON document (a list of runs) instead of the table"})
def list_(c, json_=False):
    """Every run in the store: id, kernel, accelerator, suites, row counts and problems."""
    runs = results.list_runs(_store())
    if json_:
        import json

        doc = []
        for d in runs:
            run = results.load_run(d)
            doc.append({"run_id": run.run_id, "path": str(d), "kernel": run.kernel, "accelerator": run.accelerator,
                        "status": run.status, "rows": len(run.rows), "problems": [str(p) for p in run.problems],
                        "suites": list(run.suites)})
        print(json.dumps(doc, indent=2))
        return
    if not runs:
        print(f"no runs in {_store()}")
        return
    print(f"{'run':48s} {'kernel':24s} {'accel':6s} {'status':11s} {'rows':>5s} {'bad':>4s} suites")
    for d in runs:
        run = results.load_run(d)
        print(f"{run.run_id:48s} {run.kernel:24s} {run.accelerator:6s} {run.status:11s} {len(run.rows):5d} "
              f"{len(run.problems):4d} {','.join(run.suites) or '-'}")


@task(name="report", iterable=["run"],
      help={"run": "run id, run directory or kernel (repeatable; default: the newest run)",
            "out": "output directory (default: the run's directory in the store, or results/report-<n>-runs); "
                   "files there that a report did not write are never overwritten",
            "all": "every run in the results directory (e.g. a night's runs across kernels)"})
def report_(c, run=None, out="", all=False):
    """Write report.html + report.md (with PNG plots) for one or more runs."""
    specs = list(run or [])
    if all:
        dirs = results.list_runs(_store())
        if not dirs:
            raise Exit(f"error: no runs in {_store()}", code=1)
    elif specs:
        dirs = _resolve(specs)
    else:
        runs = results.list_runs(_store())
        if not runs:
            raise Exit(f"error: no runs in {_store()}: run `inv bench.all --kernel K` first", code=1)
        dirs = [runs[-1]]
    loaded = results.load_runs(dirs)
    for r in loaded:
        for p in r.problems:
            print(f"problem: {p}")
    if not any(r.rows for r in loaded):
        raise Exit(f"error: no readable row in {', '.join(str(d) for d in dirs)} (problems above): no report written",
                   code=1)
    out_dir, legacy = _report_dir(dirs, out)
    try:
        path = report.write_report(dirs, out_dir, legacy=legacy)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    for r in loaded:
        if r.status not in ("complete", "unknown"):  # unknown: made before runs recorded a status
            print(f"warning: run {r.run_id} is {r.status}: {r.manifest.get('status_reason') or 'no reason'}")
    print(f"report: {path}")
    print(f"claims: {path.parent / 'claims.json'}")
    print(f"markdown: {path.with_suffix('.md')}")


def _report_dir(dirs: list[Path], out: str) -> tuple[Path, bool]:
    """(where the report goes, whether it is a run directory in the store): -o as given; else inside
    the store: the run's own directory when it is one of the store's, else results/report-<...>."""
    if out:
        return Path(out), False
    store = _store().resolve()
    if len(dirs) == 1 and dirs[0].resolve().parent == store:
        return dirs[0], True
    name = f"report-{dirs[0].name}" if len(dirs) == 1 else f"report-{len(dirs)}-runs"
    return _store() / name, False


@task(iterable=["run"], help={"run": "run id, directory or kernel (repeatable; default: every run with maps rows)"})
def memlock(c, run=None):
    """The talk's memlock example (931712 / 340864 B) beside measured and predicted memlock per kernel."""
    dirs = _resolve(list(run)) if run else results.list_runs(_store())
    files = [d / "maps.jsonl" for d in dirs if (d / "maps.jsonl").exists()]
    print("\n".join(talkmaps.talk_comparison(talkmaps.read_rows(files), talkmaps.load_talk())))


@task(help={"a": "baseline: run id, run directory or kernel (e.g. 6.1, host)",
            "b": "the other side: run id, run directory or kernel",
            "test": "significance test: mannwhitney (default) or welch",
            "report": "print the regression report to paste into a mail (headline, context, rows that moved) "
                      "instead of the full table"})
def compare(c, a, b, test="mannwhitney", report=False):
    """Regressions and improvements from A to B with significance, like a kernel-comparison report."""
    da, db = _resolve([a]), _resolve([b])
    fa, runs_a = aggregate.load_frame(da)
    fb, runs_b = aggregate.load_frame(db)
    for run in runs_a + runs_b:
        for p in run.problems:
            print(f"problem: {p}")
        if run.status not in ("complete", "unknown"):  # unknown: made before runs recorded a status
            reason = str(run.manifest.get("status_reason") or "").split("\n", 1)[0]
            print(f"warning: run {run.run_id} is {run.status}{': ' + reason if reason else ''} "
                  "(its rows are compared, but it did not finish as planned)")
    if fa.empty or fb.empty:
        raise Exit(f"error: no valid rows in {'A' if fa.empty else 'B'}", code=1)
    if test not in ("mannwhitney", "welch"):
        raise Exit(f"error: unknown test {test!r}: mannwhitney or welch", code=1)
    try:
        unit = comparing.check_units(fa, fb)
    except comparing.UnitMismatch as e:
        raise Exit(f"error: {e}", code=2) from None
    for line in comparing.param_differences([r.manifest for r in runs_a], [r.manifest for r in runs_b]):
        if not report:  # the report lists them in its context block
            print(f"warning: the runs' parameters differ: {line}")
    res = comparing.compare(fa, fb, test=test)
    if report:
        from lab.report import regression

        differ = comparing.param_differences([r.manifest for r in runs_a], [r.manifest for r in runs_b])
        print(regression.render(res, runs_a, runs_b, unit, params_differ=differ), end="")
        return
    names = [f"{s} ({', '.join(d.name for d in ds)})" for s, ds in ((a, da), (b, db))]
    same = len({r.kernel for r in runs_a + runs_b}) == 1
    print(comparing.format_compare(res, names[0], names[1], test=test, unit=unit, same_kernel=same))


@task(iterable=["run"], help={"run": "run id, directory or kernel (repeatable; default: every run)",
                              "out": "output directory (default: results/)"})
def export(c, run=None, out=""):
    """Every row of the chosen runs as one tidy table: rows.csv and rows.parquet."""
    dirs = _resolve(list(run)) if run else results.list_runs(_store())
    df, runs = aggregate.load_frame(dirs)
    for r in runs:
        for p in r.problems:
            print(f"problem: {p}")
    paths = aggregate.export(df, Path(out) if out else _store())
    print(f"{len(df)} rows from {len(runs)} runs: " + ", ".join(str(p) for p in paths))


@task(iterable=["run"], help={"run": "run id, directory or kernel (repeatable; default: every run)",
                              "accelerator": "the accelerator every run must have recorded (default kvm; with "
                                             "--fail-on, checked only when given)",
                              "fail_on": "PCT: fail when a row regressed by PCT % or more against the run's "
                                         "baseline, printing the regression report",
                              "previous": "with --fail-on: a directory of earlier runs holding the baselines "
                                          "(default: the store itself)"})
def check(c, run=None, accelerator="", fail_on="", previous=""):
    """Fail unless each run's manifest records the given accelerator (CI: the guest really ran under KVM);
    with --fail-on PCT, also unless no row regressed by PCT % or more against its baseline."""
    from lab.core.config import LabError
    from lab.run import nightly

    dirs = _resolve(list(run)) if run else results.list_runs(_store())
    if not dirs:
        raise Exit(f"error: no runs in {_store()}", code=1)
    if fail_on:
        from lab.run import regressions

        try:
            pct = float(fail_on)
        except ValueError:
            raise Exit(f"error: --fail-on takes a percentage (e.g. 1), not {fail_on!r}", code=2) from None
        base = results.list_runs(Path(previous)) if previous else results.list_runs(_store())
        lines, failed = regressions.check(dirs, base, pct)
        print("\n".join(lines))
        if failed:
            raise Exit(f"error: a row regressed by {pct:g}% or more (report above)", code=1)
        if not accelerator:
            return
    accelerator = accelerator or "kvm"
    bad = []
    for d in dirs:
        try:
            print(f"{d.name}: accelerator {nightly.check_accelerator(d, accelerator)}")
        except LabError as e:
            bad.append(str(e))
    if bad:
        raise Exit("error: " + "\nerror: ".join(bad), code=1)


@task(iterable=["run"], help={"run": "run id, directory or kernel (repeatable; default: every run)",
                              "report": "a report directory holding claims.json (claims per kernel)",
                              "compare": "a file holding results.compare's output (regressions)",
                              "previous": "a directory of earlier runs (the previous nightly): each run is "
                                          "compared with the one of the same kernel there, as results.compare",
                              "baseline": "results.baseline's JSON: which nightly each kernel's previous run "
                                          "came from; the summary shows it and its age"})
def summary(c, run=None, report="", compare="", previous="", baseline=""):
    """A Markdown summary of runs (status, claims per kernel, regressions), e.g. for $GITHUB_STEP_SUMMARY."""
    import json

    from lab.run import nightly

    dirs = _resolve(list(run)) if run else results.list_runs(_store())
    text = Path(compare).read_text() if compare and Path(compare).is_file() else ""
    if previous and Path(previous).is_dir():
        text += nightly.compare_previous(dirs, results.list_runs(Path(previous)))
    chosen = json.loads(Path(baseline).read_text()) if baseline and Path(baseline).is_file() else None
    if baseline and chosen is None:
        text = f"baseline not determined: no {baseline} (the step choosing it failed: see its log)\n" + text
    print(nightly.summary(dirs, Path(report) if report else None, text, chosen), end="")


@task(help={"meta": "what .ci/previous gathered from GitHub (runs.json, jobs-<id>.json)",
            "branch": "the default branch (runs of other branches are never a baseline)",
            "out": "write the choice as JSON here too"})
def baseline(c, meta="baseline", branch="", out=""):
    """Per kernel, the newest scheduled nightly on the default branch whose leg for that kernel succeeded:
    one line `KERNEL RUN_ID CREATED_AT` each (what .ci/previous downloads)."""
    import json

    from lab.run import baseline as bl

    try:
        chosen = bl.pick(Path(meta), branch=branch)
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None
    if out:
        Path(out).write_text(json.dumps(chosen, indent=2) + "\n")
    for k, b in chosen.items():
        print(f"{k} {b['run_id']} {b['created_at']}")


@task(help={"out": "directory to copy the runs into (what the workflow uploads)"})
def stage(c, out=".ci-upload"):
    """Copy the runs that ended and say so (complete, partial, failed, interrupted) to OUT; a run
    still marked `running` is left out and named. Exit 1 if none was copied."""
    from lab.run import nightly

    copied, left = nightly.stage(_store(), Path(out))
    for name in copied:
        print(f"staged {name}")
    for why in left:
        print(f"left out {why}")
    if not copied:
        raise Exit(f"error: no finished or marked run in {_store()} to stage", code=1)
