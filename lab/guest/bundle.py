"""What a remote target gets: the agent and the host-built BPF artefacts as a tarball, and the newer
tool builds (lab/guest/toolbuilds.py) as a second one, pushed only when the tools suite runs there."""

from __future__ import annotations

import io
import tarfile

from lab.core.config import PACKAGE, Paths

TOOLBUILDS = "toolbuilds"  # build/bpf/toolbuilds: newer libbpf-tools with their libraries (lab/guest/toolbuilds.py)
USERTOOLS = "usertools"  # build/bpf/usertools: the user's pushed tools (lab/guest/usertools.py)
TOOLS_ONLY = (TOOLBUILDS, USERTOOLS)  # pushed only when the tools suite runs there


def bundle(paths: Paths) -> bytes:
    """A tarball of what the guest needs: the agent package and the host-built BPF artefacts, without
    the newer tool builds (~5 MB compressed: only the tools suite uses them, see toolbuilds_bundle)."""
    def keep(ti: tarfile.TarInfo) -> tarfile.TarInfo | None:
        if ti.name.endswith("vmlinux.h") or any(ti.name.startswith(f"bpf/{d}") for d in TOOLS_ONLY):
            return None
        return ti

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(PACKAGE / "agent", arcname="agent",
                filter=lambda ti: None if "__pycache__" in ti.name else ti)
        tar.add(paths.build / "bpf", arcname="bpf", filter=keep)
    return buf.getvalue()


def toolbuilds_bundle(paths: Paths) -> bytes | None:
    """The newer tool builds and the user's pushed tools (bpf/toolbuilds/..., bpf/usertools/...), or
    None if neither was prepared."""
    srcs = [d for d in TOOLS_ONLY if (paths.build / "bpf" / d).is_dir()]
    if not srcs:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for d in srcs:
            tar.add(paths.build / "bpf" / d, arcname=f"bpf/{d}")
    return buf.getvalue()
