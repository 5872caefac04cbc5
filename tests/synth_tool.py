"""A tool with a known cost, for the decomposition test: a raw tracepoint program on sched_switch
that counts to LAB_SYNTH_ITERS per event (loaded from hand-written bytecode: no compiler, no
libbpf), and a user-space loop that burns LAB_SYNTH_SHARE of a CPU (process CPU time kept at that
fraction of wall time). Prints a header line once attached, like the libbpf-tools; exits on SIGINT.
"""

import ctypes
import os
import signal
import struct
import sys
import time

SYS_BPF = 321
BPF_PROG_LOAD = 5
BPF_RAW_TRACEPOINT_OPEN = 17
PROG_TYPE_RAW_TRACEPOINT = 17


def insn(code, dst=0, off=0, imm=0):
    return struct.pack("<BBhi", code, dst, off, imm)


def program(iters):
    """r0 = 0; do r0 += 1 while r0 < iters; r0 = 0; exit  (the verifier walks every iteration)."""
    return (insn(0xB7) + insn(0x07, imm=1) + insn(0xA5, off=-2, imm=iters)  # mov, add, jlt -2
            + insn(0xB7) + insn(0x95))


def attach(iters):
    libc = ctypes.CDLL(None, use_errno=True)
    code = ctypes.create_string_buffer(program(iters))
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
    return fd, link


def main():
    iters = int(os.environ.get("LAB_SYNTH_ITERS", "2000"))
    share = float(os.environ.get("LAB_SYNTH_SHARE", "0.2"))
    fds = attach(iters)
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
