"""The kernel's own trigger benchmark (tools/testing/selftests/bpf/bench), fetched and built on demand.

The lab's kernel_batch rows copy the method of the kernel's `bench trig-*` benchmarks; this module
builds the real thing so the two can be run side by side on the same machine
(benchmarks/kernel_bench.py, `./labctl bench.reference`). Nothing of the kernel's code is kept in
this repository: it comes from Debian's `linux-source-X.Y` package, read through the lab's private
apt configuration (lab/kernels/debarchive.py), and is built at benchmark time:

  <cache>/kbench/debs/linux-source-X.Y_<version>_all.deb    the package as downloaded
  <cache>/kbench/<package>_<version>/src/                   the subset of the tree the build reads
  <cache>/kbench/<package>_<version>/bin/bench              the built bench (+ build.json: how)

Only the trigger benchmarks are built: bench.c, benchs/bench_trigger.c, testing_helpers.c,
trace_helpers.c, kernel/bpf/disasm.c, libbpf from the same tree (tools/lib/bpf), and the BPF
program progs/trigger_bench.c (clang -O2 --target=bpf -mcpu=v3, as the selftests Makefile does;
it includes uapi headers only, no vmlinux.h), its skeleton made by the host's bpftool. The kernel's
files are compiled unmodified; bench.c's table names every benchmark of the full build, so a
generated stubs.c defines the ones not built (each named `not-built:<symbol>`, with an empty
option list): that is the whole of the trimming.
"""

from __future__ import annotations

import json
import re
import resource
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from lab.agent.hooks import table as hook_table
from lab.core.config import LabError, Paths
from lab.kernels.debarchive import Suite, natural

# what the build reads from the source tree (one pass over the tarball)
MEMBERS = ("tools/lib/bpf", "tools/include", "tools/arch/x86/include", "tools/testing/selftests/bpf",
           "scripts/bpf_doc.py", "kernel/bpf/disasm.c", "kernel/bpf/disasm.h")
USER_SOURCES = ("bench.c", "benchs/bench_trigger.c", "testing_helpers.c", "trace_helpers.c",
                "../../../../kernel/bpf/disasm.c")
DEFAULT_SUITE = "trixie"  # linux-source-6.12: has trig-kernel-count, trig-rawtp and trig-tp (6.10+)


@dataclass(frozen=True)
class Build:
    package: str  # linux-source-6.12
    version: str  # 6.12.118-1
    binary: Path

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


def root(paths: Paths | None = None) -> Path:
    return (paths or Paths()).cache / "kbench"


def _run(cmd: list[str], cwd: Path | None = None, what: str = "") -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"{what or cmd[0]} failed ({' '.join(cmd)[:300]}): "
                       f"{(proc.stderr or proc.stdout).strip()[-1500:]}")
    return proc.stdout


def source_deb(paths: Paths | None = None, suite: str = DEFAULT_SUITE) -> tuple[str, str, Path]:
    """(package, version, .deb) of the newest linux-source-* in `suite`; the .deb is downloaded once.
    If the archive cannot be read, the newest .deb cached earlier is used."""
    paths = paths or Paths()
    debs = root(paths) / "debs"
    try:
        s = Suite(suite, paths.cache)
        names = s.candidates("linux-source-*")
        if not names:
            raise LabError(f"Debian {suite} offers no linux-source-* package")
        package = names[-1]
        version = s.version(package) or ""
        cached = sorted(debs.glob(f"{package}_{version.replace(':', '%3a')}_*.deb"))
        deb = cached[-1] if cached else s.download(package, debs)
        return package, version, deb
    except LabError as e:
        cached = sorted(debs.glob("linux-source-*.deb"), key=lambda p: natural(p.name))
        if not cached:
            raise
        print(f"warning: {e}; using the cached {cached[-1].name}", flush=True)
        package, version = cached[-1].name.split("_")[:2]
        return package, version.replace("%3a", ":"), cached[-1]


def extract(deb: Path, package: str, dest: Path) -> Path:
    """The MEMBERS of the kernel tree inside `deb` into dest (kept: a cache)."""
    if (dest / "Makefile.lab-extracted").exists():
        return dest
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        tarball = f"./usr/src/{package}.tar.xz"
        print(f"  extracting the trigger bench's sources from {deb.name}", flush=True)
        sh = ('dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" "$3" && '
              'xz -dc "$2/$3" | tar -x -C "$2" --strip-components=1 '
              + " ".join(f'"{package}/{m}"' for m in MEMBERS) + ' && rm -rf "$2/usr"')
        _run(["sh", "-c", sh, "sh", str(deb), str(tmp), tarball], what="extracting the kernel source")
        (tmp / "Makefile.lab-extracted").write_text(f"{deb.name}\n")
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def stubs_source(bench_c: str, defined: set[str]) -> str:
    """C defining every benchmark and option table bench.c names but the built objects do not."""
    out = ['/* generated by lab/kernels/trigbench.py: benchmarks of bench.c\'s table that are not built */',
           "#include <argp.h>", '#include "bench.h"']
    for kind, name in re.findall(r"^extern (const struct bench|struct argp) (\w+);", bench_c, re.M):
        if name in defined:
            continue
        if "argp" in kind:
            out.append(f"static const struct argp_option {name}_opts[] = {{ {{}} }};")
            out.append(f"struct argp {name} = {{ .options = {name}_opts }};")
        else:
            out.append(f'const struct bench {name} = {{ .name = "not-built:{name}" }};')
    return "\n".join(out) + "\n"


def tool_version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


def compile_bench(src: Path, out: Path, cc: str = "cc", clang: str = "clang", bpftool: str = "bpftool") -> Path:
    """Build src's trigger bench into out/bench (out is replaced)."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "inc" / "bpf").mkdir(parents=True)
    (tmp / "libbpf").mkdir()
    try:
        lib, sel = src / "tools/lib/bpf", src / "tools/testing/selftests/bpf"
        defs = _run(["python3", str(src / "scripts/bpf_doc.py"), "--header", "--file",
                     str(src / "tools/include/uapi/linux/bpf.h")], what="scripts/bpf_doc.py")
        for h in lib.glob("*.h"):
            shutil.copyfile(h, tmp / "inc" / "bpf" / h.name)
        (tmp / "inc" / "bpf" / "bpf_helper_defs.h").write_text(defs)
        print(f"  building libbpf ({lib.relative_to(src)}) and the trigger bench with {cc} / {clang}", flush=True)
        objs = []
        for c in sorted(lib.glob("*.c")):
            o = tmp / "libbpf" / (c.stem + ".o")
            _run([cc, "-O2", "-g", "-fPIC", "-D_LARGEFILE64_SOURCE", "-D_FILE_OFFSET_BITS=64", "-D_GNU_SOURCE",
                  "-I.", "-I../../include", "-I../../include/uapi", "-c", c.name, "-o", str(o)], cwd=lib,
                 what=f"compiling {c.name}")
            objs.append(str(o))
        _run(["ar", "rcs", str(tmp / "libbpf.a"), *objs], what="ar")
        triple = subprocess.run([cc, "-dumpmachine"], capture_output=True, text=True).stdout.strip()
        triple = triple or "x86_64-linux-gnu"
        bpf_o, linked = tmp / "trigger_bench.bpf.o", tmp / "trigger_bench.linked.o"
        _run([clang, "-g", "-O2", "--target=bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86", "-Wall",
              "-Wno-compare-distinct-pointer-types", f"-I{tmp / 'inc'}", "-I.", "-I../../../include/uapi",
              "-idirafter", f"/usr/include/{triple}", "-idirafter", "/usr/include",
              "-c", "progs/trigger_bench.c", "-o", str(bpf_o)], cwd=sel, what="clang (progs/trigger_bench.c)")
        _run([bpftool, "gen", "object", str(linked), str(bpf_o)], what="bpftool gen object")
        skel = _run([bpftool, "gen", "skeleton", str(linked), "name", "trigger_bench"], what="bpftool gen skeleton")
        (tmp / "trigger_bench.skel.h").write_text(skel)
        cflags = ["-O2", "-g", "-D_GNU_SOURCE", f"-I{tmp}", f"-I{tmp / 'inc'}", "-I.", "-I../../../include",
                  "-I../../../include/uapi", "-I../../../../kernel/bpf"]
        uobjs = []
        for c in USER_SOURCES:
            o = tmp / (Path(c).stem + ".o")
            _run([cc, *cflags, "-c", c, "-o", str(o)], cwd=sel, what=f"compiling {c}")
            uobjs.append(o)
        defined = set(_run(["nm", "--defined-only", "--format=just-symbols", str(tmp / "bench_trigger.o")]).split())
        (tmp / "stubs.c").write_text(stubs_source((sel / "bench.c").read_text(), defined))
        _run([cc, *cflags, "-c", str(tmp / "stubs.c"), "-o", str(tmp / "stubs.o")], cwd=sel, what="compiling stubs.c")
        _run([cc, "-o", str(tmp / "bench"), *map(str, uobjs), str(tmp / "stubs.o"), str(tmp / "libbpf.a"),
              "-lelf", "-lz", "-lm", "-lpthread"], what="linking bench")
        out.mkdir(parents=True, exist_ok=True)
        for keep in ("bench", "stubs.c", "trigger_bench.bpf.o"):
            shutil.copyfile(tmp / keep, out / keep)
        (out / "bench").chmod(0o755)
        (out / "build.json").write_text(json.dumps({
            "cc": tool_version([cc, "--version"]), "clang": tool_version([clang, "--version"]),
            "bpftool": tool_version([bpftool, "version"]), "sources": list(USER_SOURCES),
            "bpf": "progs/trigger_bench.c", "libbpf": "tools/lib/bpf (in-tree)"}, indent=1) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "bench"


def ensure(paths: Paths | None = None, suite: str = DEFAULT_SUITE) -> Build:
    """The built bench of the newest linux-source in `suite`, fetched and built once per version."""
    paths = paths or Paths()
    package, version, deb = source_deb(paths, suite)
    top = root(paths) / f"{package}_{version}"
    binary = top / "bin" / "bench"
    if not binary.exists():
        src = extract(deb, package, top / "src")
        compile_bench(src, top / "bin")
    return Build(package, version, binary)


# ---- running it and reading its output ----

ITER = re.compile(r"^Iter\s+(\d+)\s+\(\s*(-?[\d.]+)us\):\s+hits\s+([\d.]+)M/s")
SUMMARY = re.compile(r"^Summary:\s+hits\s+([\d.]+)\s+\S+\s+([\d.]+)M/s")


@dataclass
class BenchResult:
    """One `bench` run: its per-second hit rates (M/s) after the warm-up and its summary."""

    name: str
    rate: float  # the bench's Summary mean, M events/s
    stddev: float  # its Summary +- (M/s)
    iters: list[float] = field(default_factory=list)  # per-second rates after the warm-up (M/s)
    warmup: int = 1
    hits: float = 0.0  # M events counted over every reported second, warm-up included
    cpu_s: float | None = None  # CPU time (user + system) of the bench process, all threads
    foreign: list[str] = field(default_factory=list)  # other runs' hook programs seen while it ran

    @property
    def cpu_ns_per_event(self) -> float | None:
        """The bench's process CPU time per event counted (its producer thread spins for the whole
        run; the rest is setup and a once-a-second report): the lab's clock, not the bench's."""
        return None if not self.cpu_s or not self.hits else self.cpu_s * 1e3 / self.hits

    @property
    def ns_per_event(self) -> float:
        return 1000.0 / self.rate

    def to_dict(self) -> dict:
        return dict(asdict(self), ns_per_event=self.ns_per_event, cpu_ns_per_event=self.cpu_ns_per_event)


def parse_output(name: str, text: str, warmup: int = 1) -> BenchResult:
    """Read `bench`'s hits output ('Iter N (..us): hits X M/s ...' lines, then 'Summary: hits M +- S M/s')."""
    found = [m for m in map(ITER.match, text.splitlines()) if m]
    iters = [(int(m.group(1)), float(m.group(3))) for m in found]
    # each 'Iter' line's rate is its hits over its interval (1 s + the printed offset in us)
    hits = sum(float(m.group(3)) * (1.0 + float(m.group(2)) / 1e6) for m in found)
    summary = [m for m in map(SUMMARY.match, text.splitlines()) if m]
    if not summary:
        raise LabError(f"bench {name}: no 'Summary: hits' line in its output: {text.strip()[-800:]}")
    rate, sd = float(summary[-1].group(1)), float(summary[-1].group(2))
    if rate <= 0:
        raise LabError(f"bench {name}: a rate of {rate} M/s (nothing was counted): {text.strip()[-800:]}")
    return BenchResult(name, rate, sd, [r for i, r in iters if i >= warmup], warmup, hits)


def added_ns(hooked: BenchResult, count: BenchResult) -> float:
    """The bench's figure for a hook over the counting baseline: ns/event hooked - ns/event counted."""
    return 1000.0 / hooked.rate - 1000.0 / count.rate


def added_cpu_ns(hooked: BenchResult, count: BenchResult) -> float | None:
    """The same difference on the bench process's CPU time per event (None without CPU times)."""
    h, c = hooked.cpu_ns_per_event, count.cpu_ns_per_event
    return None if h is None or c is None else h - c


def per_iter_added(hooked: BenchResult, count: BenchResult) -> list[float]:
    """Added ns per event second by second (each of hooked's seconds over count's mean)."""
    return [1000.0 / r - 1000.0 / count.rate for r in hooked.iters if r > 0]


def command(binary: Path, name: str, cpu: int = 0, warmup: int = 1, duration: int = 5,
            batch_iters: int = 100) -> list[str]:
    """The bench in a private mount namespace with tracefs mounted there (libbpf finds trig-tp's
    tracepoint id in tracefs; the host may not mount it; nothing outside the namespace changes)."""
    sh = ('mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || exit 97; '
          'exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", sh, "sh", str(binary),
            "-w", str(warmup), "-d", str(duration), "-a", "--prod-affinity", str(cpu),
            "--trig-batch-iters", str(batch_iters), name]


def run(binary: Path, name: str, cpu: int = 0, warmup: int = 1, duration: int = 5,
        batch_iters: int = 100) -> tuple[BenchResult, str]:
    """Run one benchmark; it stops by itself after warmup + duration s (killed if this process is
    interrupted or it overruns). Every half second the hook programs loaded by others are sampled
    (`foreign_hooks`): programs of another run on the same tracepoint add their cost to our events.
    Returns the result (with its process CPU time and what was seen) and the raw text."""
    cmd = command(binary, name, cpu, warmup, duration, batch_iters)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seen: set[str] = set()
    deadline = time.monotonic() + warmup + duration + 60
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        try:
            while True:
                try:
                    text = proc.communicate(timeout=0.5)[0]
                    break
                except subprocess.TimeoutExpired:
                    seen.update(foreign_hooks())
                    if time.monotonic() > deadline:
                        raise LabError(f"bench {name} did not stop after {warmup + duration + 60} s") from None
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise LabError(f"bench {name} exited {proc.returncode}: {text.strip()[-1000:]}")
    res = parse_output(name, text, warmup)
    res.cpu_s = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    res.foreign = sorted(seen)
    return res, text


# the lab's hook programs (bpf/hook_*.bpf.c); the bench's own bench_trigger_* are not counted: they
# are ours while it runs and linger a moment after it exits (a link is released from a workqueue)
HOOK_PREFIXES = tuple(hook_table.HOOKS[h].prog + "_" for h in hook_table.on("batch"))


def foreign_hooks() -> list[str]:
    """Names of BPF programs loaded right now that look like the lab's hook programs: another lab
    run's programs on the same tracepoint or helper add their cost to every event of ours."""
    try:
        out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True, timeout=30).stdout
        progs = json.loads(out or "[]")
    except (OSError, ValueError, subprocess.TimeoutExpired):
        return []
    return sorted(p.get("name", "?") for p in progs if str(p.get("name", "")).startswith(HOOK_PREFIXES))
