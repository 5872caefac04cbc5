"""results.history (a history of runs, its change points, its page) and bench.bisect (the commit of
a kernel tree, or the catalog kernel, that moved a row). Registered in lab/cli/__init__.py."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import Exit, task

from lab.core.config import InputError, LabError, Paths


@task(help={"store": "a directory of runs (default: the results store); nested runs are found too, so "
                     "nightly artifacts downloaded with `gh run download ID -D STORE/ID` form one store",
            "json_": "print the change points as one JSON list (row key, before/after runs, change, %)",
            "csv": "write the change points as CSV to this file ('-': standard output)",
            "html": "write the history page (one static offline HTML file) here",
            "report": "print the regression report of the newest change point (or of change point N, 1 = newest)"})
def history(c, store="", json_=False, csv="", html="", report=""):
    """A series per figure and comparable identity across the runs of a store, with its change points."""
    from lab.analysis import history as hist

    root = Path(store) if store else Paths().results
    try:
        dirs = hist.find_runs(root)
    except InputError as e:
        raise Exit(f"error: {e}", code=2) from None
    if not dirs:
        raise Exit(f"error: no runs in {root}", code=2)
    try:
        series, notes = hist.build(dirs)
    except ImportError as e:
        raise Exit(f"error: change points need Apache Otava ({e}): ./labctl installs it "
                   "(requirements-nodeps.lock)", code=1) from None
    if json_:
        print(json.dumps(hist.as_records(series), indent=2, default=str))
    elif not csv or csv != "-":
        print(hist.format_text(series, notes))
    if csv:
        text = hist.as_csv(series)
        if csv == "-":
            print(text, end="")
        else:
            Path(csv).write_text(text)
            print(f"csv: {csv}")
    if html:
        from lab.report import historypage

        print(f"page: {historypage.write(series, notes, dirs, Path(html))}")
    if report:
        from lab.report import regression

        pairs = hist.changes(series)
        n = int(report) if report.isdigit() else 1
        if not 1 <= n <= len(pairs):
            raise Exit(f"error: --report {report}: there are {len(pairs)} change points", code=2)
        s, ch = pairs[n - 1]
        by = {d.name: d for d in dirs}
        from lab.analysis import compare as comparing

        what = comparing.label(s.key)
        text, _ = regression.for_runs([by[ch.before]], [by[ch.after]], focus={"suite": s.suite, "what": what,
                                                                                     "row_key": s.row_key})
        print(text, end="")


@task(help={"tree": "a kernel git tree (bisect mode); without it, --good/--bad are catalog aliases",
            "good": "a commit (or catalog alias) where the row has its old figure",
            "bad": "a commit (or catalog alias) where the row moved",
            "row": "HOOK/VARIANT/METHOD (e.g. raw_tp/empty/kernel_batch) or maps/MAP_TYPE/... (results.history's key)",
            "accel": "guest accelerator (default icount: exact counts, one run per step decides)",
            "playbook": "the playbook the row's suite parameters come from (default quick)",
            "engine": "kernel build: vng (virtme-ng, default where installed) or make",
            "floor": "% the ends must differ by (default: the row's determinism tolerance, else 2)"})
def bisect(c, row, good, bad, tree="", accel="icount", playbook="quick", engine="", floor=""):
    """The first commit of a kernel tree (git bisect) or the catalog kernel that moved one row."""
    from lab.run import bisect as bis
    from lab.run import bisectrow

    try:
        suite, want = bisectrow.parse_row(row)
        tol = float(floor) / 100 if floor else 0.005 if want.get("method") == "kernel_batch" else 0.02
        measurer = bisectrow.RowMeasurer(row, playbook=playbook, accel=accel)
        if not tree:
            releases = _releases(good, bad)
            steps, first = bis.catalog(good, bad, releases, measurer, tol)
            for s in steps:
                print(f"{s.rev:8s} {s.subject:28s} {s.value:12,.1f} {s.verdict}{'; ' + s.note if s.note else ''}")
            print(f"first catalog kernel nearer the bad end: {first} ({releases[first]})")
            return
        from lab.kernels import kbuild

        src = Path(tree).resolve()
        cache = Paths().cache / "kbuild" / kbuild.tree_id(src)
        builder = kbuild.TreeBuilder(cache, engine=engine)  # checks the build tools before anything is made
        work = bis.worktree(src, cache / "src")
        result = bis.run(work, good, bad, row, builder, measurer, tol)
        print(bis.report(result), end="")
    except LabError as e:
        raise Exit(f"error: {e}", code=e.exit_code) from None


def _releases(good: str, bad: str) -> dict[str, str]:
    """The release of every catalog kernel already in the cache, and of the two ends (fetched if need be):
    the packaged versions the archives still offer (each Debian suite keeps only its newest package)."""
    from lab.kernels import catalog
    from lab.kernels.sources import SOURCES

    _, entries = catalog.catalog()
    out = {a: ks[0].release for a, ks in catalog.cached(Paths()).items() if ks and a in entries
           and SOURCES[entries[a].source].boots}
    for end in (good, bad):
        if end not in entries or not SOURCES[entries[end].source].boots:
            raise InputError(f"without --tree, --good/--bad are catalog aliases ({', '.join(entries)}), not {end!r}")
        out.setdefault(end, catalog.resolve(end).release)
    return out
