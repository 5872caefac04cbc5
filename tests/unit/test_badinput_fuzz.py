"""Property tests (hypothesis) of issue 26: random values for the bench options and every playbook
field, and random damage to a recorded run. Every outcome is exit 0 (a run that would start, or a
whole report), or exit 1/2 with one `error:` line naming the input; bad input never reaches the
boot boundary (faked: tests/support/badinput.py); nothing is written outside the results store and
the lab cache; no traceback. Each test prints how many cases it tried and what they covered."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from lab.core.config import ROOT
from tests.support.badinput import Booted, cli, fake_boot, isolate, small_run, snapshot

SETTINGS = settings(max_examples=int(os.environ.get("LAB_FUZZ_EXAMPLES", "100")), deadline=None, derandomize=True,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: a failure shows as found
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def labelled(good, bad, one_in: int = 8):
    """(value, is valid) from two strategies, a bad value one time in `one_in`."""
    return st.integers(1, one_in).flatmap(lambda n: bad.map(lambda v: (v, False)) if n == 1
                                          else good.map(lambda v: (v, True)))


BAD_INT = st.sampled_from([0, -3, "ten", True, 1.5, None, [], 10 ** 15])
SMALL = {"hooks": {"trials": 20, "stats_trials": 5, "ops": 5000, "uprobe_ops": 500, "net_ops": 500,
                   "perf_samples": 200, "perf_trials": 4, "batch": 100, "batch_trials": 10, "batch_block_ms": 50},
         "maps": {"ops": 100000, "trials": 5, "loops": 1024, "max_entries": 10240, "nkeys": 1024, "user_ops": 5000,
                  "user_trials": 3},
         "tools": {"trials": 3, "seconds": 2, "proof_seconds": 2}}
LISTS = {"hooks": {"hooks": (["kprobe", "tracepoint", "raw_tp", "fentry"], ["kprobe", "no_such_hook"]),
                   "variants": (["body", "empty"], "body"), "freqs": ([99, 999], [0])},
         "maps": {"types": (["array", "hash"], ["array", "btree"]), "mem_max_entries": ([1024], ["big"])},
         "tools": {"tools": (["runqlat", "vfsstat"], ["top"]), "combined": (True, "yes")}}


@st.composite
def suite_params(draw, suite):
    out, ok = {}, True
    for name, top in SMALL[suite].items():
        if draw(st.integers(0, 3)) == 0:
            v, good = draw(labelled(st.integers(1, top), BAD_INT, one_in=25))
            if v is not None or good:
                out[name], ok = v, ok and good
    for name, (good, bad) in LISTS[suite].items():
        pick = draw(st.sampled_from(["absent"] * 12 + ["good"] * 12 + ["bad"]))
        if pick != "absent":
            out[name], ok = (good if pick == "good" else bad), ok and pick == "good"
    if draw(st.integers(0, 19)) == 0:
        out["no_such_param"], ok = 1, False
    return out, ok


@st.composite
def playbooks(draw):
    suites = draw(st.lists(st.sampled_from(["hooks", "maps", "tools"]), min_size=1, max_size=3, unique=True))
    data, ok = {"suites": {}}, True
    for s in suites:
        params, good = draw(suite_params(s))
        data["suites"][s], ok = params, ok and good
    sane = st.fixed_dictionaries({"cpus": st.integers(1, 4), "memory": st.sampled_from(["1G", "2G"])})
    vm, good = draw(labelled(sane,
                             st.sampled_from([{"cpus": 0}, {"cpus": 1000}, {"memory": "lots"}, {"memory": "999T"},
                                              {"disk": 1}, {"accel": "warp"}])))
    if draw(st.booleans()):
        data["vm"], ok = vm, ok and good
    if draw(st.integers(0, 19)) == 0:
        data["colour"], ok = "blue", False
    text = yaml.safe_dump(data)
    if draw(st.integers(0, 29)) == 0:
        text, ok = text + "  : [unclosed\n", False
    return text, ok


OPTIONS = {
    "--kernel": labelled(st.sampled_from(["host", "6.12", "ssh://root@box:2222"]),
                         st.sampled_from(["nonsense", "ssh://root@unpinned", "ssh://root@box:port",
                                          "/no/such/vmlinuz"])),
    "--accel": labelled(st.sampled_from(["tcg", "icount", "kvm"]), st.sampled_from(["warp", "KVM!"])),
    "--budget": labelled(st.integers(1, 900).map(str), st.sampled_from(["x", "0", "-5", "1.5", "inf"])),
    "--max-hours": labelled(st.sampled_from(["1e6", "100000"]), st.sampled_from(["abc", "0", "-1", "nan"])),
}
HALFWIDTH = {"bench.tools": labelled(st.floats(0.1, 50).map(lambda f: f"{f:.2f}"),
                                     st.sampled_from(["abc", "-1", "0", "nan", "1e999"])),
             "bench.hooks": labelled(st.floats(0.1, 99).map(lambda f: f"{f:.2f}"),
                                     st.sampled_from(["abc", "100", "-2", "0"]))}


@st.composite
def invocations(draw):
    task = draw(st.sampled_from(["bench.hooks", "bench.maps", "bench.tools", "bench.all"]))
    args, ok, why = [task], True, []
    hw = HALFWIDTH.get(task, HALFWIDTH["bench.tools"])
    opts = [(o, v) for o, v in OPTIONS.items() if o != "--budget" or task != "bench.maps"]
    for opt, strat in [*opts, *((("--halfwidth", hw),) if task != "bench.maps" else ())]:
        if draw(st.booleans()):
            v, good = draw(strat)
            args += [opt, v]
            ok = ok and good
            why.append(opt if good else f"bad {opt}")
    if task in ("bench.tools", "bench.all") and draw(st.integers(0, 4)) == 0:
        v, good = draw(labelled(st.just("mine=true"), st.sampled_from(["noequals", "x=push:/no/such/tool"])))
        args += ["--tool", v]
        ok = ok and good
        why.append("--tool" if good else "bad --tool")
    text, good = draw(playbooks())
    return args, text, ok and good, why + ["playbook" if good else "bad playbook"]


def _pin_box(root: Path) -> None:
    import subprocess

    key = root / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (root / "known_hosts").write_text("[box]:2222 " + " ".join(key.with_suffix(".pub").read_text().split()[:2]) + "\n")


TRIED: Counter = Counter()


@SETTINGS
@given(case=invocations())
def test_random_options_and_playbooks(case, tmp_path_factory, monkeypatch):
    args, text, ok, covered = case
    root = tmp_path_factory.mktemp("cli")
    isolate(monkeypatch, root)
    fake_boot(monkeypatch)
    _pin_box(root)
    (root / "pb.yaml").write_text(text)
    before = snapshot(root)
    checkout = snapshot(ROOT / "results") if (ROOT / "results").is_dir() else {}
    try:
        code, out, err = cli(*args, "--playbook", str(root / "pb.yaml"))
    except Booted:
        code, out, err = None, "", ""
    assert "Traceback" not in err + out
    TRIED.update(["valid" if ok else "invalid", *covered])
    if not ok:
        assert code == 2, (args, text, code, err)
    else:  # it would boot, unless its estimate is past the bound (then it says so)
        assert code is None or (code == 2 and "--max-hours" in err), (args, text, code, err)
    if code is not None:
        errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1, err
    after = snapshot(root)
    new = {p for p in after if p not in before}
    assert all(p.startswith((str(root / "store"), str(root / "cache"))) for p in new), new
    assert {p: h for p, h in after.items() if p in before} == before
    assert (snapshot(ROOT / "results") if (ROOT / "results").is_dir() else {}) == checkout


DAMAGE = ("truncate a line", "cut the last line", "non-UTF-8 bytes", "missing manifest", "manifest of another version",
          "manifest field of another type", "row of another suite", "row of another schema", "rows file a symlink out",
          "manifest a symlink out", "report file a symlink out", "run directory a symlink out", "garbage line",
          "empty rows file", "every file unreadable")
SEEN: Counter = Counter()
RUNS: Counter = Counter()


def damage(run: Path, outside: Path, what: str, rnd: random.Random) -> None:
    files = sorted(run.glob("*.jsonl"))
    f = rnd.choice(files)
    lines = f.read_bytes().split(b"\n")[:-1]
    i = rnd.randrange(len(lines)) if lines else 0
    manifest = run / "manifest.json"
    if "manifest" in what and (not manifest.exists() or manifest.is_symlink()):
        return  # an earlier damage took it away
    if what == "truncate a line" and lines:
        lines[i] = lines[i][:rnd.randrange(len(lines[i]))]
        f.write_bytes(b"\n".join(lines) + b"\n")
    elif what == "cut the last line" and f.stat().st_size > 40:
        data = f.read_bytes()
        f.write_bytes(data[:-rnd.randrange(2, 40)])
    elif what == "non-UTF-8 bytes" and lines:
        j = rnd.randrange(len(lines[i]) + 1)
        lines[i] = lines[i][:j] + bytes([rnd.choice([0x80, 0xc3, 0xff, 0xfe])]) + lines[i][j:]
        f.write_bytes(b"\n".join(lines) + b"\n")
    elif what == "missing manifest":
        (run / "manifest.json").unlink()
    elif what == "manifest of another version":
        m = json.loads((run / "manifest.json").read_text())
        (run / "manifest.json").write_text(json.dumps(dict(m, manifest_version=rnd.choice([0, 2, 99, "1"]))))
    elif what == "manifest field of another type":
        m = json.loads((run / "manifest.json").read_text())
        k = rnd.choice(sorted(m))
        m[k] = rnd.choice([None, 7, "x", [1, {}], {"a": [1]}, True, -1.5])
        (run / "manifest.json").write_text(json.dumps(m))
    elif what == "row of another suite":
        other = [g for g in files if g != f and not g.is_symlink()]
        if other and other[0].read_bytes().strip():
            with f.open("ab") as out:
                out.write(other[0].read_bytes().splitlines()[0] + b"\n")
    elif what == "row of another schema" and lines:
        try:
            row = json.loads(lines[i])
        except ValueError:
            return  # an earlier damage broke that line already
        if isinstance(row, dict):
            row["schema"] = rnd.choice([0, 2, "1"])
            lines[i] = json.dumps(row).encode()
            f.write_bytes(b"\n".join(lines) + b"\n")
    elif what == "rows file a symlink out" and not f.is_symlink():
        shutil.copy(f, outside / "rows.jsonl")
        f.unlink()
        f.symlink_to(outside / "rows.jsonl")
    elif what == "manifest a symlink out":
        shutil.copy(run / "manifest.json", outside / "manifest.json")
        (run / "manifest.json").unlink()
        (run / "manifest.json").symlink_to(outside / "manifest.json")
    elif what == "report file a symlink out":
        (outside / "victim.html").write_text("keep\n")
        (run / "report.html").symlink_to(outside / "victim.html")
    elif what == "garbage line":
        with f.open("ab") as out:
            out.write(rnd.choice([b"[]\n", b"null\n", b"{\"suite\": 1}\n", b"[" * 100000 + b"\n", b"\x00\x00\n"]))
    elif what == "empty rows file":
        f.write_bytes(b"")
    elif what == "every file unreadable":
        for g in [*files, manifest]:
            if not g.is_symlink():
                g.write_bytes(b"\xff\xfe not json\n")


@settings(SETTINGS, max_examples=int(os.environ.get("LAB_FUZZ_DAMAGE_EXAMPLES", "15")))
@given(kinds=st.lists(st.sampled_from(DAMAGE), min_size=1, max_size=3, unique=True), seed=st.integers(0, 2 ** 16),
       by_path=st.booleans())
def test_random_damage_to_a_recorded_run(kinds, seed, by_path, monkeypatch):
    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store, _ = isolate(monkeypatch, root)
        outside = root / "outside"
        outside.mkdir()
        name = "20261127T055106Z-6.12.117_deb12-amd64-f721"
        if "run directory a symlink out" in kinds:
            run = small_run(outside / name)
            (store / name).symlink_to(run)
        else:
            run = small_run(store / name)
        for what in kinds:
            damage(run, outside, what, rnd)
        SEEN.update(kinds)
        RUNS["damage"] += 1
        before = snapshot(outside)
        spec = str(store / name) if by_path else name
        code, out, err = cli("results.report", "--run", spec)
        assert "Traceback" not in out + err
        assert code in (0, 1, 2), (kinds, code, err)
        if code:
            errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
            assert len(errors) == 1 and (name in errors[0] or "report.html" in errors[0]), (kinds, err)
        else:
            where = next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("report: "))
            assert Path(where).is_file() and Path(where).resolve().is_relative_to(store.resolve()), where
            json.loads(Path(where).with_name("claims.json").read_text())
        assert snapshot(outside) == before, kinds  # nothing written outside the store


@pytest.fixture(scope="module", autouse=True)
def _counts():
    yield
    print(f"\ncli cases: {sum(TRIED[k] for k in ('valid', 'invalid'))} ({TRIED['valid']} valid, "
          f"{TRIED['invalid']} invalid); covered: {dict(sorted(TRIED.items()))}")
    print(f"damage cases: {RUNS['damage']}; damage classes (cases each): {dict(sorted(SEEN.items()))}")
