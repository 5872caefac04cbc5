#!/usr/bin/env python3
"""A tool with a known cost, for the decomposition test: a raw tracepoint program on sched_switch
that counts to LAB_SYNTH_ITERS per event (loaded from hand-written bytecode: no compiler, no
libbpf), and a user-space loop that burns LAB_SYNTH_SHARE of a CPU (process CPU time kept at that
fraction of wall time). LAB_SYNTH_UPDATES=K: before the loop, K bpf_map_update_elem calls per event
on a hash map of its own (keys 0..K-1: the map-access counting test knows the calls per event).
Prints a header line once attached, like the libbpf-tools; exits on SIGINT.
"""

import ctypes
import os
import signal
import struct
import sys
import time

SYS_BPF = 321
BPF_MAP_CREATE = 0
BPF_PROG_LOAD = 5
MAP_TYPE_HASH = 1
BPF_RAW_TRACEPOINT_OPEN = 17
PROG_TYPE_RAW_TRACEPOINT = 17


def insn(code, dst=0, off=0, imm=0, src=0):
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def updates(map_fd, k):
    """k times: key i at fp-4, value i at fp-16, bpf_map_update_elem(map, &key, &value, BPF_ANY)."""
    out = b""
    for i in range(k):
        out += (insn(0x62, 10, -4, i) + insn(0x7A, 10, -16, i)  # st [r10-4] = i (w), st [r10-16] = i (dw)
                + insn(0x18, 1, imm=map_fd, src=1) + insn(0)  # r1 = map (ld_imm64, BPF_PSEUDO_MAP_FD)
                + insn(0xBF, 2, src=10) + insn(0x07, 2, imm=-4)  # r2 = r10 - 4
                + insn(0xBF, 3, src=10) + insn(0x07, 3, imm=-16)  # r3 = r10 - 16
                + insn(0xB7, 4) + insn(0x85, imm=2))  # r4 = 0; call bpf_map_update_elem
    return out


def program(iters, map_fd=None, k=0):
    """[k map updates]; r0 = 0; do r0 += 1 while r0 < iters; r0 = 0; exit (the verifier walks every
    iteration)."""
    return (updates(map_fd, k) + insn(0xB7) + insn(0x07, imm=1) + insn(0xA5, off=-2, imm=iters)  # mov, add, jlt -2
            + insn(0xB7) + insn(0x95))


def hash_map(libc):
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIII", attr, 0, MAP_TYPE_HASH, 4, 8, 64)
    fd = libc.syscall(SYS_BPF, BPF_MAP_CREATE, attr, 128)
    if fd < 0:
        sys.exit(f"libbpf-like failure: BPF_MAP_CREATE: {os.strerror(ctypes.get_errno())}")
    return fd


def attach(iters, k=0):
    libc = ctypes.CDLL(None, use_errno=True)
    map_fd = hash_map(libc) if k else None
    code = ctypes.create_string_buffer(program(iters, map_fd, k))
    lic = ctypes.create_string_buffer(b"GPL")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<IIQQ", attr, 0, PROG_TYPE_RAW_TRACEPOINT, (len(code) - 1) // 8,
                     ctypes.addressof(code), ctypes.addressof(lic))
    attr[48:57] = b"lab_synth"
    fd = libc.syscall(SYS_BPF, BPF_PROG_LOAD, attr, 128)
    if fd < 0:
        sys.exit(f"libbpf-like failure: BPF_PROG_LOAD: {os.strerror(ctypes.get_errno())}")
    name = ctypes.create_string_buffer(b"sched_switch")
    attr = ctypes.create_string_buffer(128)
    struct.pack_into("<QI", attr, 0, ctypes.addressof(name), fd)
    link = libc.syscall(SYS_BPF, BPF_RAW_TRACEPOINT_OPEN, attr, 128)
    if link < 0:
        sys.exit(f"libbpf-like failure: RAW_TRACEPOINT_OPEN: {os.strerror(ctypes.get_errno())}")
    return (fd, link) + ((map_fd,) if map_fd is not None else ())


def main():
    iters = int(os.environ.get("LAB_SYNTH_ITERS", "2000"))
    share = float(os.environ.get("LAB_SYNTH_SHARE", "0.2"))
    fds = attach(iters, int(os.environ.get("LAB_SYNTH_UPDATES", "0")))
    stop = []
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print(f"Tracing synthetic: {iters} iterations per sched_switch, {share:.2f} CPU in user space", flush=True)
    t0, c0 = time.monotonic(), time.process_time()
    while not stop:
        if time.process_time() - c0 < share * (time.monotonic() - t0):
            for _ in range(2000):
                pass
        else:
            time.sleep(0.001 if share else 0.1)
    for fd in fds:
        os.close(fd)


if __name__ == "__main__":
    main()
