"""A nightly leg's long step for real (.ci/step, .ci/container lab): the lab (tests/support/fake_lab.py stands
in; the real one needs a VM) stopped by the step's time limit or by a signal to the step wrapper ends
with its run marked `interrupted`, whole, and staged for upload (a local directory stands in for
the artifact store); nothing is left running. Docker is a stand-in too: a `docker exec` that runs the
command here (it forwards no signal, as the real one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from lab.run import nightly
from tests.support.standins import DOCKER

ROOT = Path(__file__).resolve().parents[2]
FAKE = [sys.executable, str(ROOT / "tests" / "support" / "fake_lab.py")]


def _env(tmp: Path) -> dict[str, str]:
    (tmp / "bin").mkdir(exist_ok=True)
    (tmp / "bin" / "docker").write_text(DOCKER)
    (tmp / "bin" / "docker").chmod(0o755)
    return dict(os.environ, LAB_RESULTS=str(tmp / "results"), FAKE_LAB_PIDFILE=str(tmp / "lab.pid"),
                LAB_STEP_PIDFILE=str(tmp / "step.pid"), LAB_STEP_GRACE="3", LAB_CONTAINER="fake",
                PATH=f"{tmp / 'bin'}:{os.environ['PATH']}")


def _gone(pid: int) -> bool:
    """The process has ended (a zombie not yet reaped by its new parent counts as ended)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except (FileNotFoundError, ProcessLookupError):
            return True
        time.sleep(0.05)
    return False


def _check_marked_whole_staged(tmp: Path, reason: str) -> None:
    (run,) = (tmp / "results").iterdir()
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and reason in manifest["status_reason"], manifest
    lines = (run / "hooks.jsonl").read_text().splitlines()
    assert len(lines) == manifest["rows"] > 0 and [json.loads(x)["n"] for x in lines] == list(range(len(lines)))
    copied, left = nightly.stage(tmp / "results", tmp / "artifact")
    assert copied == [run.name] and not left
    assert (tmp / "artifact" / run.name / "hooks.jsonl").read_text() == (run / "hooks.jsonl").read_text()
    assert _gone(int((tmp / "lab.pid").read_text())) and not (tmp / "step.pid").exists()


def test_time_limit_marks_the_run_interrupted_and_it_is_staged(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.run([str(ROOT / ".ci" / "step"), "1", *FAKE], env=env, capture_output=True, text=True,
                          timeout=30, cwd=ROOT)
    assert proc.returncode == 124, proc.stderr
    assert "time limit of 1 s reached" in proc.stderr
    _check_marked_whole_staged(tmp_path, "SIGTERM")


def test_sigterm_to_the_container_step_reaches_the_lab(tmp_path):
    """What a cancel or the step's timeout-minutes does: SIGTERM to `.ci/container lab` on the runner."""
    env = _env(tmp_path)
    proc = subprocess.Popen([str(ROOT / ".ci" / "container"), "lab", "600", *FAKE], env=env, cwd=ROOT,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "lab.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)  # to the wrapper only, not its process group
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 143, err
    assert "passing SIGTERM to the lab" in err
    _check_marked_whole_staged(tmp_path, "SIGTERM")


def test_a_run_the_lab_could_not_mark_is_not_staged(tmp_path):
    env = _env(tmp_path)
    proc = subprocess.run([str(ROOT / ".ci" / "step"), "1", *FAKE, "--ignore-term"], env=dict(env, LAB_STEP_GRACE="1"),
                          capture_output=True, text=True, timeout=30, cwd=ROOT)
    assert proc.returncode == 137, proc.stderr  # timeout's SIGKILL after the grace period
    copied, left = nightly.stage(tmp_path / "results", tmp_path / "artifact")
    assert not copied and "status running" in left[0]
    assert _gone(int((tmp_path / "lab.pid").read_text()))
