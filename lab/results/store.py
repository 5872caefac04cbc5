"""The result store: results/<run-id>/manifest.json plus one <suite>.jsonl of rows per suite.

Writing: the runner creates a run (RunStore.create), appends each row line as it arrives
(append_line, so a crash midway keeps every finished row) and updates the manifest.

Reading: load_run / load_runs parse every line, validate it with lab/agent/schema.validate, and
keep every problem (file, line number, what is wrong). A bad line is never silently dropped: it is
reported in LoadedRun.problems and the rest of the file still loads. results/README.md documents
the row schema and the manifest.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.agent import schema
from lab.core.config import LabError
from lab.results import readchecks

MANIFEST_VERSION = 1  # `manifest_version` of the manifests this lab writes and reads (absent: written before it)
MIN_FREE_BYTES = 1 << 20  # a run needs at least this much room in the results directory (LAB_MIN_FREE_BYTES)

# Manifest fields a complete run records (see results/README.md); `missing_manifest_fields` says
# which of them a run lacks, so the report can show it rather than guess.
MANIFEST_FIELDS = (
    "run_id", "time", "playbook", "playbook_name", "lab_version", "suites",
    "kernel_alias", "kernel_release", "kernel_source", "accelerator", "accelerator_reason",
    "image_recipe_hash", "host_cpu_model", "host_cpus", "host_kernel", "guest",
)
# The VM target records why it chose its accelerator as `accelerator_why` (lab/run/labs.py); the report
# and results/README.md call it `accelerator_reason`.
MANIFEST_ALIASES = {
    "accelerator_reason": ("accelerator_reason", "accelerator_why"),
}


def new_run_id(kernel: str) -> str:
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    safe = "".join(c if c.isalnum() or c in ".-_" else "_" for c in kernel)
    return f"{stamp}-{safe}-{secrets.token_hex(2)}"


class RowWriteError(LabError):
    """A row could not be written (disk full, read-only, not permitted): the file still ends at its
    last complete row."""


def check_results_dir(results_dir: Path) -> None:
    """Before anything boots: the results directory must be writable and have some free space."""
    need = int(os.environ.get("LAB_MIN_FREE_BYTES", MIN_FREE_BYTES))
    try:
        results_dir.mkdir(parents=True, exist_ok=True)
        probe = results_dir / f".write-check-{os.getpid()}"
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, b"x")
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as e:
        raise LabError(f"results directory {results_dir} is not writable ({e.strerror or e}): "
                       "fix its permissions or mount, or set LAB_RESULTS to another directory") from None
    free = shutil.disk_usage(results_dir).free
    if free < need:
        raise LabError(f"results directory {results_dir} has {free // 1024} KiB free, a run needs at least "
                       f"{need // 1024} KiB: free some space or set LAB_RESULTS to another directory")


def _why(e: OSError) -> str:
    names = {errno.ENOSPC: "no space left", errno.EROFS: "read-only file system",
             errno.EPERM: "not permitted", errno.EACCES: "permission denied", errno.EDQUOT: "quota exceeded"}
    return names.get(e.errno or 0, e.strerror or str(e))


@dataclass
class RunStore:
    """One run's directory. Rows are appended line by line as they arrive (a crash keeps them)."""

    path: Path

    @classmethod
    def create(cls, results_dir: Path, run_id: str, manifest: dict[str, Any]) -> RunStore:
        path = results_dir / run_id
        try:
            path.mkdir(parents=True, exist_ok=False)
        except OSError as e:
            raise RowWriteError(f"cannot make the run directory {path}: {_why(e)}") from None
        store = cls(path)
        try:
            store.write_manifest(dict(manifest, run_id=run_id, manifest_version=MANIFEST_VERSION))
        except RowWriteError:
            store.remove_if_empty()
            raise
        return store

    def remove_if_empty(self) -> bool:
        """Remove the run directory if no row reached it (a run that failed before its first row)."""
        if self.row_count():
            return False
        shutil.rmtree(self.path, ignore_errors=True)
        return True

    @property
    def run_id(self) -> str:
        return self.path.name

    def manifest(self) -> dict[str, Any]:
        return json.loads((self.path / "manifest.json").read_text())

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Atomically (a temporary file renamed over it); on a full disk, in place instead (the old
        manifest's blocks are reused), so a run that filled its disk can still say so."""
        data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
        tmp = self.path / "manifest.json.tmp"
        try:
            tmp.write_bytes(data)
            tmp.replace(self.path / "manifest.json")
            return
        except OSError as e:
            tmp.unlink(missing_ok=True)
            if e.errno not in (errno.ENOSPC, errno.EDQUOT) or not (self.path / "manifest.json").exists():
                raise RowWriteError(f"cannot write {self.path / 'manifest.json'}: {_why(e)}") from None
        try:
            fd = os.open(self.path / "manifest.json", os.O_WRONLY)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, "short write")
                os.ftruncate(fd, len(data))
            finally:
                os.close(fd)
        except OSError as e:
            raise RowWriteError(f"cannot write {self.path / 'manifest.json'}: {_why(e)}") from None

    def update_manifest(self, **fields: Any) -> None:
        self.write_manifest(dict(self.manifest(), **fields))

    def rows_file(self, suite: str) -> Path:
        return self.path / f"{suite}.jsonl"

    def append_line(self, suite: str, line: str) -> None:
        """Append one row as one complete line: a single write(2) with O_APPEND. A write that fails
        or is short is cut back, so the file ends at its last complete row; RowWriteError says why."""
        path = self.rows_file(suite)
        data = (line.rstrip("\n") + "\n").encode()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as e:
            raise RowWriteError(f"cannot write a row to {path}: {_why(e)}") from None
        try:
            size = os.fstat(fd).st_size
            try:
                n = os.write(fd, data)
                if n != len(data):
                    raise OSError(errno.ENOSPC, "short write")
            except OSError as e:
                try:
                    os.ftruncate(fd, size)
                except OSError:
                    pass
                raise RowWriteError(f"cannot write a row to {path}: {_why(e)}; the file ends at its last "
                                    "complete row") from None
        finally:
            os.close(fd)

    def row_count(self) -> int:
        n = 0
        for f in self.path.glob("*.jsonl"):
            try:
                n += f.read_bytes().count(b"\n")
            except OSError:
                pass
        return n


@dataclass(frozen=True)
class Problem:
    """Something wrong in a stored run: a line that is not JSON or fails the schema, or a bad manifest."""

    file: Path
    line: int  # 1-based; 0 for a whole-file problem
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}: {self.message}"


@dataclass
class LoadedRun:
    """A run read back from disk: its manifest, its valid rows, and every problem found."""

    path: Path
    manifest: dict[str, Any]
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id") or self.path.name)

    @property
    def suites(self) -> list[str]:
        return sorted({r["suite"] for r in self.rows})

    def fact(self, name: str) -> Any:
        """A manifest field, looking through the alternative spellings of MANIFEST_ALIASES."""
        for key in MANIFEST_ALIASES.get(name, (name,)):
            if self.manifest.get(key) not in (None, ""):
                return self.manifest[key]
        return None

    def missing_manifest_fields(self) -> list[str]:
        missing = []
        for name in MANIFEST_FIELDS:
            if name == "guest" and self.fact("accelerator") == "host":
                continue  # no guest on the host target
            if name in ("image_recipe_hash", "accelerator_reason") and self.fact("accelerator") == "host":
                continue
            if self.fact(name) is None:
                missing.append(name)
        return missing

    @property
    def status(self) -> str:
        """complete | partial | interrupted | failed (lab/run/outcome.py); `running` while a run is on
        (or when one died without a word); runs made before statuses were recorded: `unknown`."""
        return str(self.manifest.get("status") or "unknown")

    @property
    def kernel(self) -> str:
        """The measured kernel's release: from the rows (uname -r in the guest), else the manifest."""
        for r in self.rows:
            return str(r["kernel"])
        return str(self.fact("kernel_release") or self.fact("kernel_alias") or "unknown")

    @property
    def accelerator(self) -> str:
        for r in self.rows:
            return str(r["accelerator"])
        return str(self.fact("accelerator") or "unknown")


def parse_rows(path: Path, unfinished_ok: bool = False) -> tuple[list[dict[str, Any]], list[Problem]]:
    """Every valid row of one JSON-lines file, and a Problem for each line that is not.

    Only whole lines (ending in a newline) are rows: a last line without one is a row still being
    written when `unfinished_ok` (the run is running: it is left for the next read), else a row cut
    short, reported. A line that is not UTF-8, not JSON, of another row schema version, or of
    another suite than the file's is a Problem; the other rows still load."""
    rows: list[dict[str, Any]] = []
    problems: list[Problem] = []
    try:
        data = path.read_bytes()
    except OSError as e:
        return rows, [Problem(path, 0, f"cannot read: {e.strerror or e}")]
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the file ends with a newline
    if tail.strip() and not unfinished_ok:
        problems.append(Problem(path, len(lines) + 1, f"incomplete last line (no newline, {len(tail)} bytes): a row "
                                                      "cut short"))
    suite_of_file = path.stem if path.stem in schema.SUITES else None
    for n, raw in enumerate(lines, start=1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            problems.append(Problem(path, n, f"not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})"))
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as e:
            msg = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else "nested too deep"
            snippet = line if len(line) <= 80 else line[:77] + "..."
            problems.append(Problem(path, n, f"not JSON ({msg}): {snippet!r}"))
            continue
        bad = schema.validate(row)
        version = row.get("schema")
        if not bad and not (type(version) is int and 1 <= version <= schema.SCHEMA_VERSION):
            bad = [f"row schema {version!r}, this lab reads 1 to {schema.SCHEMA_VERSION}"]
        if not bad and suite_of_file and row.get("suite") != suite_of_file:
            bad = [f"a {row.get('suite')} row in {path.name}"]
        if bad:
            problems.append(Problem(path, n, "fails the row schema: " + "; ".join(bad)))
            continue
        row["_file"] = path.name
        row["_line"] = n
        rows.append(row)
    return rows, problems


def is_run(path: Path) -> bool:
    """A run directory: one with a manifest.json (readable or not) or rows (*.jsonl)."""
    path = Path(path)
    return path.is_dir() and (os.path.lexists(path / "manifest.json") or any(path.glob("*.jsonl")))


def load_run(path: Path) -> LoadedRun:
    """Read one run directory: manifest.json and every *.jsonl in it. A symlink out of the run's
    directory is not followed (a Problem says so)."""
    path = Path(path)
    problems: list[Problem] = []
    manifest: dict[str, Any] = {}
    mpath = path / "manifest.json"
    try:
        if readchecks.outside(mpath, path):
            raise OSError(f"a symlink to {mpath.resolve()}, outside the run: not read")
        loaded = json.loads(mpath.read_bytes().decode("utf-8"))
        if isinstance(loaded, dict):
            manifest, why = readchecks.check_manifest(loaded, MANIFEST_VERSION)
            problems = [Problem(mpath, 0, w) for w in why]
        else:
            problems.append(Problem(mpath, 0, "manifest is not a JSON object"))
    except FileNotFoundError:
        problems.append(Problem(mpath, 0, "missing manifest"))
    except (OSError, ValueError, RecursionError) as e:  # not UTF-8 or not JSON: ValueError
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
        problems.append(Problem(mpath, 0, f"unreadable manifest: {why}"))
    manifest.setdefault("run_id", path.name)
    run = LoadedRun(path=path, manifest=manifest, problems=problems)
    for f in sorted(path.glob("*.jsonl")):
        if readchecks.outside(f, path):
            run.problems.append(Problem(f, 0, f"a symlink to {f.resolve()}, outside the run: not read"))
            continue
        rows, probs = parse_rows(f, unfinished_ok=run.status == "running")
        run.rows.extend(rows)
        run.problems.extend(probs)
    for r in run.rows:
        if r.get("run_id") != run.run_id and r.get("run_id") not in (None, "adhoc"):
            run.problems.append(Problem(path / r["_file"], r["_line"],
                                        f"row run_id {r['run_id']!r} differs from the run's {run.run_id!r}"))
    return run


def list_runs(results_dir: Path) -> list[Path]:
    """Run directories under results_dir (those with a manifest or rows), oldest first by name."""
    if not results_dir.is_dir():
        return []
    return sorted(p for p in results_dir.iterdir() if is_run(p))


def load_runs(paths: list[Path]) -> list[LoadedRun]:
    return [load_run(p) for p in paths]


def select_runs(results_dir: Path, spec: str) -> list[Path]:
    """Runs named by `spec`: a run directory path, a run id (or unique prefix), or a kernel.

    A kernel matches the manifest's kernel_alias (e.g. 6.12, host) or kernel_release, or the rows'
    uname -r (exact, or as a prefix such as '6.12.').
    """
    p = Path(spec)
    if p.is_dir():
        return [p]
    runs = list_runs(results_dir)
    exact = [r for r in runs if r.name == spec]
    if exact:
        return exact
    by_kernel = []
    for r in runs:
        run = load_run(r)
        names = {str(run.fact("kernel_alias") or ""), str(run.fact("kernel_release") or ""), run.kernel}
        if spec in names or run.kernel.startswith(spec + ".") or run.kernel.startswith(spec + "-"):
            by_kernel.append(r)
    if by_kernel:
        return by_kernel
    prefix = [r for r in runs if r.name.startswith(spec)]
    if prefix:
        return prefix
    return []
