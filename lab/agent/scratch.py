"""Where the tool suite's disk stressor writes: a lab guest's scratch disk (found by its ext4 label),
else a temporary directory. Standard library only."""

import os
import subprocess
import time

SCRATCH_LABEL = b"labscratch"  # lab/guest/vm.py formats each lab's scratch disk with this ext4 label
SCRATCH_MOUNT = "/run/lab-scratch"


def ext4_label(dev):
    """The ext4 volume label of a block device, or None (superblock at 1024: magic 0xEF53 at +0x38,
    s_volume_name[16] at +0x78)."""
    try:
        with open(dev, "rb") as f:
            f.seek(1024)
            sb = f.read(0x88)
    except OSError:
        return None
    if len(sb) < 0x88 or sb[0x38:0x3A] != b"\x53\xef":
        return None
    return sb[0x78:0x88].rstrip(b"\0")


def mount_scratch(load_driver):
    """Mount the lab's scratch disk if this machine has one: (mount point, device) or (None, None).
    In a lab guest (load_driver) the virtio-blk module is loaded first: the lab attaches the disk
    but nothing probes it at boot."""
    if load_driver:
        subprocess.run(["modprobe", "virtio_blk"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
    try:
        devs = sorted(os.listdir("/sys/block"))
    except OSError:
        return None, None
    for name in devs:
        dev = "/dev/" + name
        if ext4_label(dev) != SCRATCH_LABEL:
            continue
        if not os.path.ismount(SCRATCH_MOUNT):
            os.makedirs(SCRATCH_MOUNT, exist_ok=True)
            if subprocess.run(["mount", "-t", "ext4", dev, SCRATCH_MOUNT], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode != 0:
                return None, None
        return SCRATCH_MOUNT, dev
    return None, None
