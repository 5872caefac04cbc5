"""What a remote target is sent (lab/guest/bundle.py): the agent and BPF artefacts every time, the newer
tool builds only in their own tarball (the tools suite's)."""

from __future__ import annotations

import io
import tarfile

from lab.core.config import Paths
from lab.guest.bundle import bundle, toolbuilds_bundle


def names(data: bytes) -> set[str]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return set(tar.getnames())


def test_tool_builds_travel_apart(tmp_path):
    paths = Paths(root=tmp_path)
    bpf = paths.build / "bpf"
    (bpf / "toolbuilds" / "trixie" / "bin").mkdir(parents=True)
    (bpf / "toolbuilds" / "trixie" / "bin" / "cachestat").write_bytes(b"x" * 1000)
    (bpf / "hookbench").write_bytes(b"elf")
    (bpf / "vmlinux.h").write_text("huge")
    assert toolbuilds_bundle(paths) is not None
    base = names(bundle(paths))
    assert "bpf/hookbench" in base and "agent/__main__.py" in base
    assert not [n for n in base if "toolbuilds" in n or n.endswith("vmlinux.h")]
    assert "bpf/toolbuilds/trixie/bin/cachestat" in names(toolbuilds_bundle(paths))


def test_no_tool_builds_no_second_tarball(tmp_path):
    (tmp_path / "build" / "bpf").mkdir(parents=True)
    assert toolbuilds_bundle(Paths(root=tmp_path)) is None
