"""The user's own tools on this machine's kernel (issue 21): a local executable pushed the way a guest
gets it (the synthetic tool, measured and decomposed like the six), and the refusals in words: a
command that exits before the load, one that loads no BPF program, bpftrace (measured where it is
installed, else unsupported with why). Nothing of theirs is left running."""

import os
import shutil
import subprocess
import sys

import pytest

from lab.agent import schema
from lab.agent.common import Context
from lab.agent.tools import suite as tools
from lab.agent.tools import user as usertool
from lab.agent.tools import verifier as toolverif
from lab.core.config import Paths
from lab.guest.bpfbuild import build_bpf

pytestmark = pytest.mark.host
SYNTH = os.path.join(os.path.dirname(__file__), os.pardir, "support", "synth_tool.py")
IDLE = "sleep 97.25"  # a tool that loads nothing (an odd time: ours alone, for pgrep)
DAEMON = "--lab-test-daemon-4711"  # the marker of the daemon below (synth_tool ignores its arguments)
USER_TOOLS = {
    "synth": {"push": "tests/support/synth_tool", "args": "--ignored"},
    "quits": "sh -c 'echo starting; echo cannot open /dev/nothing >&2; exit 3'",
    "idle": IDLE,
    # a tool that has another process load its program (a daemon: setsid -f, not its child)
    "viadaemon": f"sh -c 'setsid -f {sys.executable} {SYNTH} {DAEMON}; sleep 97.5'",
    "openat": {"bpftrace": "tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }", "load": ["open"]},
}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    d = tmp_path_factory.mktemp("bpf")
    build_bpf()
    shutil.copy(Paths().build / "bpf" / toolverif.SHIM, d)
    pushed = d / usertool.PUSH_DIR / "synth"  # where lab/guest/usertools.py puts a pushed tool
    pushed.mkdir(parents=True)
    (pushed / "synth_tool").write_text(f"#!{sys.executable}\n" + open(SYNTH).read())
    (pushed / "synth_tool").chmod(0o755)
    old, usertool.ATTACH_S = usertool.ATTACH_S, 5  # 5 s to load nothing (idle, viadaemon) is enough
    try:
        ctx = Context("tools", "user", "host", str(d), dict(tools=[], user_tools=USER_TOOLS, trials=2, seconds=2,
                                                            proof_seconds=1, map_count=False, combined=False))
        return {r["tool"]: r for r in tools.ToolSuite(ctx).run()}
    finally:
        usertool.ATTACH_S = old
        for pid in subprocess.run(["pgrep", "-f", "--", DAEMON], capture_output=True, text=True).stdout.split():
            os.kill(int(pid), 9)  # the daemon is not the tool's: the suite leaves it, the test stops it


def test_a_pushed_executable_is_measured_and_decomposed(rows):
    r = rows["synth"]
    assert r["status"] == "ok", r["reason"]
    assert schema.validate(r) == []
    assert r["user_tool"] == "push" and r["resource"] == "user" and r["tool_build"].startswith("pushed ")
    assert r["events"] > 0 and r["programs"] == 1 and len(r["overhead_cpu_samples"]) == 2
    assert r["program_detail"]["lab_synth"]["hook"] == "raw_tp"
    assert r["cpu_user"] > 30 and r["cpu_exec"] > 0  # it burns 0.2 CPU in user space by design
    assert r["verified_insns"] == 2 * 2000 + 3


def test_a_command_that_exits_first_is_an_error_with_its_own_lines(rows):
    r = rows["quits"]
    assert r["status"] == "error"
    assert r["reason"].startswith("exited 3 after ") and "before the load started" in r["reason"]
    assert "cannot open /dev/nothing" in r["reason"]
    assert "starting" in r["reason"]


def test_a_tool_that_loads_no_program_is_unsupported_and_stopped(rows):
    r = rows["idle"]
    assert r["status"] == "unsupported" and "loads no BPF program of its own" in r["reason"]
    assert "daemon" in r["reason"] or "no program appeared" in r["reason"]
    assert subprocess.run(["pgrep", "-f", IDLE], capture_output=True).returncode == 1  # nothing left


def test_a_tool_that_loads_through_a_daemon_says_what_was_seen(rows):
    """Its programs are held by a process outside its own tree: not its own, named in the refusal."""
    r = rows["viadaemon"]
    assert r["status"] == "unsupported" and "loads no BPF program of its own" in r["reason"]
    assert "appeared system-wide meanwhile (" in r["reason"] and "lab_synth" in r["reason"]
    assert "daemon" in r["reason"]
    assert subprocess.run(["pgrep", "-f", "sleep 97.5"], capture_output=True).returncode == 1
    assert subprocess.run(["pgrep", "-f", "--", DAEMON], capture_output=True).returncode == 1  # the test stopped it


def test_bpftrace_is_measured_or_unsupported_with_why(rows):
    r = rows["openat"]
    if shutil.which("bpftrace"):
        assert r["status"] in ("ok", "unsupported"), r["reason"]
        if r["status"] == "ok":
            assert r["events"] > 0 and r["load"].startswith("stress-ng --open 1")
    else:
        assert r["status"] == "unsupported" and "bpftrace is not installed" in r["reason"]


def test_a_pushed_executable_whose_library_is_missing_is_refused_naming_it(tmp_path):
    """A real ELF linked against a library the target lacks: the target's ld.so --list names it."""
    cc = shutil.which("cc") or shutil.which("clang") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on this host")
    (tmp_path / "gone.c").write_text("int gone(void) { return 0; }\n")
    (tmp_path / "main.c").write_text("int gone(void);\nint main(void) { return gone(); }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", tmp_path / "libgone42.so", tmp_path / "gone.c"], check=True)
    root = tmp_path / usertool.PUSH_DIR / "mine"
    root.mkdir(parents=True)
    subprocess.run([cc, "-o", root / "mine", tmp_path / "main.c", f"-L{tmp_path}", "-lgone42"], check=True)
    (tmp_path / "libgone42.so").unlink()

    class Refused(Exception):
        pass

    with pytest.raises(Refused, match=r"mine cannot run in the target: missing libgone42\.so"):
        usertool.argv("mine", {"push": "somewhere/mine"}, str(tmp_path), Refused)


def test_the_command_lines_tools_and_halfwidth_run_end_to_end(tmp_path):
    """`./labctl bench.tools --kernel host --playbook usertools_playbook --halfwidth 5 --budget 20`'s path
    (lab/run/tooloptions.py, the push, the agent, the report): runqlat and the pushed synthetic tool each
    add pairs until +-5 points or 20 s, and say which; the report shows them side by side."""
    from conftest import PLAYBOOKS, run_rows

    from lab.run import tooloptions

    over = tooloptions.overrides(halfwidth=5, budget=20)
    path = tooloptions.derive(str(PLAYBOOKS / "usertools_playbook.yaml"), over, Paths(cache=tmp_path))
    store, got = run_rows(["tools"], "host", path, tmp_path / "results", report=True)
    rows = {r["tool"]: r for r in got["tools"]}
    assert set(rows) == {"runqlat", "synth"}
    for r in rows.values():
        assert r["status"] == "ok", r["reason"]
        assert r["stopped_on"] in ("halfwidth", "budget") and r["halfwidth_target"] == 5.0
        assert r["trials"] == len(r["overhead_cpu_samples"]) >= (6 if r["stopped_on"] == "halfwidth" else 1)
        if r["stopped_on"] == "halfwidth":
            assert r["halfwidth_reached"] <= 5
        assert r["pairs_seconds"] <= 20 + 10  # the budget, and at most one pair's overrun of the estimate
    assert rows["synth"]["user_tool"] == "push" and rows["synth"]["resource"] == "user"
    report = (store.path / "report.md").read_text()
    assert "pairs, stopped on" in report and "| synth " in report.replace("|synth", "| synth")
