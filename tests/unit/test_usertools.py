"""The user's tools and the precision asked for: parameter checks, the command line's options into a
derived playbook, the stopping rule (no BPF, no load: the boundaries are the samples)."""

import pytest
import yaml

from lab.agent.tools import precision
from lab.agent.tools import suite as tools
from lab.agent.tools import user as usertool
from lab.core.config import InputError, Paths
from lab.run import playbooks, tooloptions


def test_user_tools_are_checked_by_name_kind_and_load():
    ok = {"mine": "/usr/bin/mytool -x", "bt": {"bpftrace": "kprobe:f { }", "load": ["open"]},
          "pushed": {"push": "a/b", "args": "-v"}}
    assert tools.check({"user_tools": ok, "loads": {"mine": ["cpu"]}}) == []
    bad = tools.check({"user_tools": {"runqlat": "x", "two": {"command": "a", "bpftrace": "b"}, "9x": "y",
                                      "ld": {"command": "z", "load": ["nope"]}, "q": "'unclosed"}})
    text = "; ".join(bad)
    for words in ("already name(s) one of the six", "exactly one of command, push, bpftrace", "'9x' is not a tool name",
                  "ld: load must be", "q: No closing quotation"):
        assert words in text, text
    assert tools.check({"halfwidth": 0}) and tools.check({"halfwidth_of": "x"}) and tools.check({"budget_s": 1.5})
    assert tools.check({"halfwidth": 2.5, "halfwidth_of": "throughput", "budget_s": 60, "max_trials": 9}) == []


def test_a_pushed_tool_missing_its_libraries_is_refused_naming_them(tmp_path, monkeypatch):
    root = tmp_path / usertool.PUSH_DIR / "t"
    root.mkdir(parents=True)
    (root / "t").write_text("#!/no/such/interpreter\n")

    class Refused(Exception):
        pass

    with pytest.raises(Refused, match="missing its interpreter /no/such/interpreter"):
        usertool.argv("t", {"push": "x/t"}, str(tmp_path), Refused)
    with pytest.raises(Refused, match="is not in"):
        usertool.argv("u", {"push": "x/u"}, str(tmp_path), Refused)
    monkeypatch.setattr(usertool.shutil, "which", lambda name: None)
    with pytest.raises(Refused, match="bpftrace is not installed in the target"):
        usertool.argv("b", {"bpftrace": "BEGIN { exit(); }"}, str(tmp_path), Refused)
    with pytest.raises(usertool.Exited, match="nosuchtool: command not found"):
        usertool.argv("c", "nosuchtool -x", str(tmp_path), Refused)


def test_bpftraces_text_tells_the_kernels_refusal_from_a_syntax_error():
    assert usertool.refusal("ERROR: Could not attach probe kprobe:nope: No such file")
    assert not usertool.refusal("stdin:1:1-3: ERROR: syntax error, unexpected identifier")


def test_pairs_stop_at_the_halfwidth_or_on_the_budget():
    p = precision.Precision({"halfwidth": 2, "trials": 3, "budget_s": 100}.get)
    five = [5.0, 5.1, 5.2, 5.0, 5.1]
    assert p.stop(five, five, 10, 5)[0] is None  # fewer than 6 pairs: no 95% interval yet
    assert p.stop(five + [5.3], five + [5.3], 15, 5)[0] == "halfwidth"
    wide = [0, 20, 40, 10, 30, 5]
    why, _, hw = p.stop(wide, wide, 96, 5)
    assert why == "budget" and hw > 2
    assert p.stop(wide, wide, 50, 5)[0] is None
    assert precision.Precision({"halfwidth": 2, "halfwidth_of": "throughput"}.get).stop(five + [5], wide, 0, 1)[0] \
        == "halfwidth"


def test_the_agents_stopping_interval_is_the_hosts_interval():
    import random

    from lab.results import stats

    rng = random.Random(7)
    for n in (3, 5, 6, 7, 10, 23, 60):
        xs = [rng.gauss(10, 3) for _ in range(n)]
        med, lo, hi, cov = precision.order_interval(xs)
        iv = stats.median_ci(xs)
        assert (med, lo, hi) == pytest.approx((iv.median, iv.low, iv.high)) and cov == pytest.approx(iv.level)
        assert (precision.halfwidth(xs)[1] is None) == (n < 6)
    fixed = precision.Precision({"trials": 2}.get)
    assert fixed.stop([1], [1], 0, 1)[0] is None and fixed.stop([1, 2], [1, 2], 0, 1)[0] == "trials"


def test_the_command_lines_options_make_a_checked_playbook(tmp_path):
    paths = Paths(cache=tmp_path)
    over = tooloptions.overrides(["mine=/usr/bin/mytool -x", "p=push:tests/support/synth_tool.py -v"],
                                 ["tracepoint:syscalls:sys_enter_openat { @[comm] = count(); }"], "open", 2, 120)
    path = tooloptions.derive("quick", over, paths)
    pb = playbooks.load(path)
    t = pb.suites["tools"]
    assert t["halfwidth"] == 2.0 and t["budget_s"] == 120 and t["tools"][0] == "runqlat"
    assert t["user_tools"]["mine"] == {"command": "/usr/bin/mytool -x", "load": ["open"]}
    assert t["user_tools"]["p"]["push"].endswith("tests/support/synth_tool.py") and t["user_tools"]["p"]["args"] == "-v"
    assert t["user_tools"]["bpftrace"]["bpftrace"].startswith("tracepoint:")
    assert yaml.safe_load(open(path))["name"] == "quick+tools"
    assert tooloptions.derive("quick", {}, paths) == "quick"
    for bad in (["noequals"], ["x="]):
        with pytest.raises(InputError):
            tooloptions.overrides(bad)
    with pytest.raises(InputError, match="--load names the load"):
        tooloptions.overrides(load="open")
    with pytest.raises(InputError, match="load must be"):
        tooloptions.derive("quick", tooloptions.overrides(["a=b"], load="nosuch"), paths)


def test_image_packages_change_the_recipe_hash_so_the_image_is_cached_apart(tmp_path):
    from lab.guest import images

    pb = playbooks.load("usertools")
    assert pb.vm.packages == ("bpftrace",) and pb.vm.with_accel("tcg").packages == ("bpftrace",)
    plain, more = images.recipe_for("debian-12"), images.recipe_for("debian-12", ("bpftrace",))
    assert plain.text == images.load_recipe("debian-12").text  # no packages: the same image as before
    assert more.hash != plain.hash and more.packages == plain.packages + ("bpftrace",)
    assert "bpftrace" in images.mmdebstrap_command(more, tmp_path)[3]
    for bad in ("image: {packages: [Not A Package]}", "image: {other: 1}", "image: [bpftrace]"):
        f = tmp_path / "bad.yaml"
        f.write_text(bad + "\nsuites: {tools: {}}\n")
        with pytest.raises(InputError, match="image"):
            playbooks.load(str(f))


def test_the_matrix_live_view_reads_the_pairs_progress_line():
    from lab.run.matrix import PAIR_LINE

    line = "[tools] runqlat: pair 7, cpu loss 3.10 +-2.40 points (target +-2), 212 of 600 s; stopped on halfwidth"
    m = PAIR_LINE.match(line)
    assert m and m.group(1) == "runqlat" and m.group(2).endswith("212 of 600 s")
    assert PAIR_LINE.match("[tools] x: pair 1, cpu loss 3.10 +-n/a points (target +-2), 2 of 600 s")
