"""bench.bisect's logic (lab/run/bisect.py) with a fake builder and measurer over a real small git
repository made here: 8 commits, one of which adds work to the raw_tp path (a file the fake measurer
counts); git bisect names it in 3 steps; every step's build sees only the commit's change. The
decision rule, the refusals, and the catalog mode's order."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from lab.core.config import InputError
from lab.run import bisect as bis

BASE = 1000.0  # the row's figure in guest instructions before the planted commit
PLANTED = 1.2  # %: what the planted commit adds


def sh(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture()
def tree(tmp_path) -> tuple[Path, list[str]]:
    repo = tmp_path / "linux"
    repo.mkdir()
    sh(repo, "init", "-q", "-b", "main")
    sh(repo, "config", "user.email", "lab@example.invalid")
    sh(repo, "config", "user.name", "lab")
    revs = []
    for i in range(9):  # commit 0 = good end, then 8 commits; the 5th of them (i == 5) adds work
        (repo / "kernel").mkdir(exist_ok=True)
        (repo / "kernel" / f"file{i}.c").write_text(f"int f{i};\n")
        if i == 5:
            (repo / "kernel" / "trace_raw_tp.c").write_text(f"/* extra work */ {PLANTED}\n")
        sh(repo, "add", "-A")
        sh(repo, "commit", "-q", "-m", f"commit {i}" + (": raw_tp: record the caller" if i == 5 else ""))
        revs.append(sh(repo, "rev-parse", "HEAD").strip())
    return repo, revs


class FakeBuilder:
    """A "build": the list of files of the checked-out tree (what an incremental build would see)."""

    def __init__(self) -> None:
        self.built: list[str] = []
        self.seen: dict[str, set[str]] = {}

    def build(self, work: Path, rev: str) -> Path:
        self.built.append(rev)
        self.seen[rev] = {p.name for p in (work / "kernel").iterdir()}
        out = work / f".image-{rev[:8]}"
        out.write_text(str(work / "kernel" / "trace_raw_tp.c"))
        return out


class FakeMeasurer:
    """An exact count: BASE, plus PLANTED % where the tree has the extra raw_tp work."""

    def __init__(self) -> None:
        self.calls = 0

    def measure(self, kernel: Path | str, rev: str) -> bis.Measured:
        self.calls += 1
        extra = Path(Path(kernel).read_text())
        value = BASE * (1 + float(extra.read_text().split()[-1]) / 100) if extra.is_file() else BASE
        return bis.Measured(value=value, unit="insn")


def test_bisect_finds_the_planted_commit_in_three_steps(tree, tmp_path):
    repo, revs = tree
    work = bis.worktree(repo, tmp_path / "cache" / "src")
    builder, measurer, lines = FakeBuilder(), FakeMeasurer(), []
    result = bis.run(work, revs[0], revs[-1], "raw_tp/empty/kernel_batch", builder, measurer, 0.005,
                     progress=lines.append)
    assert result.first_bad == revs[5] and "raw_tp: record the caller" in result.subject
    assert len(result.steps) == 3 and measurer.calls == 5  # the two ends, then log2(8) steps
    assert [s.verdict for s in result.steps] == [
        "bad" if revs.index(s.rev) >= 5 else "good" for s in result.steps]
    assert lines[0].startswith("good end") and lines[1].startswith("bad end")
    assert all(f"step {n}" in lines[n + 1] for n in (1, 2, 3)) and "insn -> " in lines[2]
    # each step built the commit git checked out, nothing else
    assert builder.built[:2] == [revs[0], revs[-1]] and builder.built[2:] == [s.rev for s in result.steps]
    for rev in builder.built:
        assert ("trace_raw_tp.c" in builder.seen[rev]) == (revs.index(rev) >= 5)
    text = bis.report(result)
    assert text.startswith(f"first bad commit: {revs[5][:12]}")
    assert f"a +{PLANTED:.2f}% regression of raw_tp/empty/kernel_batch" in text
    # the user's checkout never moved, and no bisection is left behind
    assert sh(repo, "rev-parse", "HEAD").strip() == revs[-1]
    assert "not bisecting" in subprocess.run(["git", "-C", str(work), "bisect", "log"], capture_output=True,
                                             text=True).stderr.lower() or \
        subprocess.run(["git", "-C", str(work), "bisect", "log"], capture_output=True).returncode != 0


def test_refusals(tree, tmp_path):
    repo, revs = tree
    work = bis.worktree(repo, tmp_path / "src")
    with pytest.raises(InputError, match="nothing to bisect"):
        bis.run(work, revs[0], revs[3], "raw_tp/empty/kernel_batch", FakeBuilder(), FakeMeasurer(), 0.005,
                progress=lambda s: None)
    with pytest.raises(InputError, match="not an ancestor"):
        bis.run(work, revs[-1], revs[0], "r", FakeBuilder(), FakeMeasurer(), 0.005, progress=lambda s: None)
    with pytest.raises(InputError, match="not a commit"):
        bis.run(work, "v0.0-nope", revs[0], "r", FakeBuilder(), FakeMeasurer(), 0.005, progress=lambda s: None)
    with pytest.raises(InputError, match="not a git tree"):
        bis.worktree(tmp_path / "plain", tmp_path / "w")


def test_decide():
    assert bis.decide(1000.0, 1000.0, 1012.0, 0.005) == ("good", "")
    assert bis.decide(1011.9, 1000.0, 1012.0, 0.005) == ("bad", "")
    verdict, note = bis.decide(1006.5, 1000.0, 1012.0, 0.005)  # nearer bad, beyond the floor of both
    assert verdict == "bad" and "several commits" in note
    assert bis.decide(984.0, 1000.0, 980.0, 0.005)[0] == "bad"  # an improvement bisects the same way


def test_catalog_mode_in_order_of_release():
    releases = {"5.10": "5.10.0-46-amd64", "6.1": "6.1.0-57-amd64", "6.12": "6.12.118+deb12-amd64",
                "latest": "7.2.13+deb14-amd64", "next": "7.3-amd64"}
    assert bis.between("6.1", "latest", releases) == ["6.1", "6.12", "latest"]
    assert bis.version_key("6.1.0-57-amd64") < bis.version_key("6.12.118+deb12-amd64")
    figures = {"6.1": 1000.0, "6.12": 1011.0, "latest": 1012.0, "5.10": 990.0, "next": 1012.0}

    class ByAlias:
        order: list[str] = []

        def measure(self, kernel, rev):
            self.order.append(str(kernel))
            return bis.Measured(figures[str(kernel)])

    m = ByAlias()
    steps, first = bis.catalog("6.1", "latest", releases, m, 0.005, progress=lambda s: None)
    assert m.order == ["6.1", "latest", "6.12"] and first == "6.12"
    assert [s.rev for s in steps] == ["6.1", "6.12", "latest"]
    with pytest.raises(InputError, match="catalog kernel"):
        bis.between("6.1", "9.9", releases)


def test_tree_builder_runs_make_in_one_object_tree_and_keeps_each_image(tree, tmp_path, monkeypatch):
    """lab/kernels/kbuild.py's make engine with a stand-in `make` on PATH (no kernel is built): defconfig
    and the fragment once, then olddefconfig + bzImage per commit in the same O= tree, ccache's PATH
    first when installed, fixed build stamps; a commit built once is never built again."""
    from lab.kernels import kbuild

    repo, revs = tree
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    (bin_dir / "make").write_text(
        "#!/bin/sh\n"
        f'echo "make $* TS=$KBUILD_BUILD_TIMESTAMP" >> {log}\n'
        'for a in "$@"; do case "$a" in O=*) obj="${a#O=}";; esac; done\n'
        'case " $* " in *" defconfig "*) echo CONFIG_X=y > "$obj/.config";; esac\n'
        'case " $* " in *" bzImage "*) mkdir -p "$obj/arch/x86/boot"; git rev-parse HEAD > '
        '"$obj/arch/x86/boot/bzImage";; esac\n')
    for tool in ("gcc", "flex", "bison", "bc", "pahole", "perl"):
        (bin_dir / tool).write_text("#!/bin/sh\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(kbuild, "HEADERS", {})
    work = bis.worktree(repo, tmp_path / "cache" / "src")
    merge = work / "scripts" / "kconfig" / "merge_config.sh"
    merge.parent.mkdir(parents=True)
    merge.write_text(f'#!/bin/sh\necho "merge $*" >> {log}\n')
    merge.chmod(0o755)
    builder = kbuild.TreeBuilder(tmp_path / "cache", engine="make", jobs=2)
    images = []
    for rev in (revs[0], revs[4], revs[0]):
        sh(work, "checkout", "-q", "--detach", rev)
        images.append(builder.build(work, rev))
    assert images[0] == images[2] and images[0].read_text().strip() == revs[0]
    assert images[1].read_text().strip() == revs[4]
    calls = log.read_text().splitlines()
    obj = tmp_path / "cache" / "obj"
    assert calls[0] == f"make O={obj} defconfig TS=2026-01-01"
    assert calls[1].startswith(f"merge -m -O {obj} {obj}/.config ") and calls[1].endswith("bisect.config")
    assert [c.split(" TS=")[0] for c in calls[2:]] == [f"make O={obj} olddefconfig", f"make O={obj} -j2 bzImage"] * 2
    assert "CONFIG_DEBUG_INFO_BTF=y" in kbuild.fragment().read_text()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InputError, match="apt-get install .*flex"):
        kbuild.TreeBuilder(tmp_path / "c2", engine="make")
