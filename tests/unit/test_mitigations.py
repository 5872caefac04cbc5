"""Mitigations: read where the kernel runs (its vulnerability lines and mitigations=off or not), asked
for by a playbook (vm: {mitigations: on|off}) and put on the guest's kernel command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.agent import mitigations
from lab.core.config import InputError
from lab.guest import accel, vm
from lab.guest.size import VmSpec
from lab.run import playbooks

# as a 6.12 icount guest here prints them (grep . /sys/devices/system/cpu/vulnerabilities/*)
GUEST = """/sys/devices/system/cpu/vulnerabilities/meltdown:Not affected
/sys/devices/system/cpu/vulnerabilities/spectre_v1:Mitigation: usercopy/swapgs barriers and __user pointer sanitization
/sys/devices/system/cpu/vulnerabilities/spectre_v2:Mitigation: Retpolines; STIBP: disabled; RSB filling"""


def test_vulnerability_lines_and_setting_are_read(tmp_path):
    d = tmp_path / "vulns"
    d.mkdir()
    (d / "spectre_v2").write_text("Mitigation: Retpolines; STIBP: disabled; RSB filling\n")
    (d / "meltdown").write_text("Not affected\n")
    cmd = tmp_path / "cmdline"
    cmd.write_text("BOOT_IMAGE=/vmlinuz root=/dev/sda1 nokaslr mitigations=off\n")
    got = mitigations.read(str(d), str(cmd))
    v2 = "Mitigation: Retpolines; STIBP: disabled; RSB filling"
    assert got == {"mitigations": "off", "vulnerabilities": {"meltdown": "Not affected", "spectre_v2": v2}}
    assert mitigations.read(str(tmp_path / "none"), str(tmp_path / "none"))["vulnerabilities"] == {}
    assert mitigations.setting_of("console=ttyS0 nokaslr") == "default"
    assert mitigations.parse_lines(GUEST)["spectre_v2"].startswith("Mitigation: Retpolines")
    assert len(mitigations.parse_lines(GUEST + "\nnoise")) == 3


def test_settings_and_comparisons_across_them():
    assert mitigations.check("off") == "off" and mitigations.check(False) == "off"  # YAML's off
    assert mitigations.check("on") == "" and mitigations.check(None) == "" and mitigations.check(True) == ""
    with pytest.raises(ValueError, match="use on"):
        mitigations.check("auto,nosmt")
    assert mitigations.differ("off", "default").startswith("mitigations differ")
    assert mitigations.differ("off", "off") is None and mitigations.differ(None, "off") is None


def test_a_playbook_asks_and_the_guest_boots_with_it(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text("vm: {mitigations: off}\nsuites:\n  hooks: {}\n")
    spec = playbooks.load(str(pb)).vm
    assert spec.mitigations == "off" and spec.with_accel("icount").mitigations == "off"
    pb.write_text("vm: {mitigations: sometimes}\nsuites:\n  hooks: {}\n")
    with pytest.raises(InputError, match="mitigations"):
        playbooks.load(str(pb))
    assert playbooks.load("default").vm.mitigations == ""
    k = type("K", (), {"vmlinuz": Path("/k")})()
    img = type("I", (), {"root": Path("/r")})()
    cmd = vm.vng_command(k, img, accel.Accel("icount", "t"), vm.VmSpec(1, "1G", 2222, "x"), tmp_path,
                         append=tuple(mitigations.kernel_args("off")), qemu_opts=("-plugin p.so,out=l",))
    assert "--append=mitigations=off" in cmd and "--qemu-opts=-plugin p.so,out=l" in cmd
    assert "--append=nokaslr" in cmd
    assert not mitigations.kernel_args("") and VmSpec().mitigations == ""


def test_orders_against_hardware_say_when_mitigations_differ():
    from lab.analysis import ranks
    from lab.results import aggregate
    from lab.results.store import load_runs

    run = Path(__file__).resolve().parents[1] / "fixtures" / "icount" / "20261207T081111Z-6.12.118_deb12-amd64-0962"
    df = aggregate.rows_frame(load_runs([run]))
    for setting, says in (("default", "mitigations differ: default against off"), ("off", "")):
        df["mitigations"] = setting
        pub = next(o for o in ranks.orderings(df) if o.versus.startswith("published"))
        assert pub.note.startswith(says) and bool(pub.note) == bool(says)
