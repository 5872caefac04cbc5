"""HangWatch (lab/run/outcome.py) decides when a silent guest is hung; the probe is faked here (the
real one, with a stopped QEMU, is in tests/vm/test_faults_vm.py)."""

from __future__ import annotations

import pytest

from lab.run import outcome
from lab.run.outcome import GuestHung, HangWatch


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(outcome.time, "monotonic", c)
    return c


def test_no_probe_while_output_flows_or_before_the_quiet_time(clock):
    asked = []
    w = HangWatch(lambda t: asked.append(t) or True, quiet=120, probes=3, probe_timeout=30)
    for _ in range(10):
        clock.t += 60
        w.tick(True)
    clock.t += 119
    w.tick(False)
    assert asked == []


def test_an_answer_restarts_the_wait_and_three_silences_raise(clock):
    answers = [True, False, False, False]
    w = HangWatch(lambda t: answers.pop(0), quiet=120, probes=3, probe_timeout=30)
    clock.t += 121
    w.tick(False)  # answered: wait again
    assert w.failed == 0
    w.tick(False)  # too soon for another probe
    assert len(answers) == 3
    clock.t += 121
    w.tick(False)
    w.tick(False)
    with pytest.raises(GuestHung, match="no agent output for 121 s and 3 SSH probes"):
        w.tick(False)


def test_output_between_failed_probes_clears_them(clock):
    w = HangWatch(lambda t: False, quiet=10, probes=2, probe_timeout=1)
    clock.t += 11
    w.tick(False)
    assert w.failed == 1
    w.tick(True)
    assert w.failed == 0


def test_environment_sets_the_thresholds(monkeypatch):
    monkeypatch.setenv("LAB_HANG_QUIET", "7")
    monkeypatch.setenv("LAB_HANG_PROBES", "2")
    monkeypatch.setenv("LAB_HANG_PROBE_TIMEOUT", "4")
    w = HangWatch(lambda t: True)
    assert (w.quiet, w.probes, w.probe_timeout) == (7.0, 2, 4.0)
