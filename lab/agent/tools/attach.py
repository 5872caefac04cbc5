"""How each of a tool's programs is attached: the hook suite's attach type name and its target.

The host joins a tool's program runs with the hook suite's per-event dispatch cost of that attach
type (lab/analysis/toolparts.py), so each program needs the same name the hook suite gives its rows
(kprobe, kretprobe, kprobe_multi, tracepoint, raw_tp, tp_btf, fentry, fexit, uprobe, uretprobe,
perf_event). Read from the kernel's BPF links (BPF_LINK_GET_NEXT_ID + bpf_link_info, 5.8+):
  raw_tracepoint link   tp_btf for a tracing program, raw_tp for a raw_tracepoint one; target = tp name
  tracing link          fentry / fexit / fmod_ret (attach_type 24 / 25 / 26)
  perf_event link       kprobe / kretprobe / tracepoint / uprobe / uretprobe (6.6+ fills the type and
                        name; older kernels leave them empty and the program type decides)
  kprobe_multi link     kprobe_multi (kretprobe_multi with the return flag)
A program without a link (attached through a perf event ioctl, older libbpf) gets its program
type's usual hook. Standard library only.
"""

import ctypes
import os
import struct

from .cost import _bpf, next_ids

BPF_LINK_GET_FD_BY_ID = 30
BPF_LINK_GET_NEXT_ID = 31
BPF_OBJ_GET_INFO_BY_FD = 15
LINK_INFO_LEN = 64
LINK_RAW_TP, LINK_TRACING, LINK_PERF_EVENT, LINK_KPROBE_MULTI = 1, 2, 7, 8
TRACING_ATTACH = {23: "tp_btf", 24: "fentry", 25: "fexit", 26: "fmod_ret"}
PERF_EVENT_TYPE = {1: "uprobe", 2: "uretprobe", 3: "kprobe", 4: "kretprobe", 5: "tracepoint", 6: "perf_event"}
BY_PROG_TYPE = {"kprobe": "kprobe", "tracepoint": "tracepoint", "raw_tracepoint": "raw_tp",
                "perf_event": "perf_event", "xdp": "xdp", "socket_filter": "socket_filter"}


def link_ids():
    return next_ids(BPF_LINK_GET_NEXT_ID)


def _get_info(fd, info):
    attr = ctypes.create_string_buffer(120)
    struct.pack_into("<IIQ", attr, 0, fd, len(info), ctypes.addressof(info))
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)


def link_info(link_id):
    """(prog_id, link type, detail dict) of one link, or None if it is gone."""
    attr = ctypes.create_string_buffer(120)
    struct.pack_into("<I", attr, 0, link_id)
    try:
        fd = _bpf(BPF_LINK_GET_FD_BY_ID, attr)
    except OSError:
        return None
    try:
        info = ctypes.create_string_buffer(LINK_INFO_LEN)
        _get_info(fd, info)
        ltype, _, prog_id = struct.unpack_from("<III", info, 0)
        name = ctypes.create_string_buffer(256)
        detail = {}
        if ltype == LINK_RAW_TP:
            info = ctypes.create_string_buffer(LINK_INFO_LEN)
            struct.pack_into("<QI", info, 16, ctypes.addressof(name), len(name))
            _get_info(fd, info)
            detail["target"] = name.value.decode(errors="replace")
        elif ltype == LINK_TRACING:
            detail["attach_type"], _, detail["btf_id"] = struct.unpack_from("<III", info, 16)
        elif ltype == LINK_KPROBE_MULTI:
            detail["count"], detail["flags"] = struct.unpack_from("<II", info, 24)
        elif ltype == LINK_PERF_EVENT:
            detail["perf_type"] = struct.unpack_from("<I", info, 16)[0]
            if detail["perf_type"] in (1, 2, 3, 4, 5):  # uprobe file / kprobe func / tp name at +24
                info = ctypes.create_string_buffer(LINK_INFO_LEN)
                struct.pack_into("<IIQI", info, 16, detail["perf_type"], 0, ctypes.addressof(name), len(name))
                try:
                    _get_info(fd, info)
                    detail["target"] = name.value.decode(errors="replace")
                except OSError:
                    pass
        return prog_id, ltype, detail
    except OSError:
        return None
    finally:
        os.close(fd)


def hook_of(prog_type, ltype, detail):
    """The hook suite's name for a program of `prog_type` attached by a link of `ltype` (None: no link)."""
    if ltype == LINK_RAW_TP:
        return "tp_btf" if prog_type == "tracing" else "raw_tp"
    if ltype == LINK_TRACING:
        return TRACING_ATTACH.get(detail.get("attach_type"), "tracing")
    if ltype == LINK_KPROBE_MULTI:
        return "kretprobe_multi" if detail.get("flags", 0) & 1 else "kprobe_multi"
    if ltype == LINK_PERF_EVENT and detail.get("perf_type") in PERF_EVENT_TYPE:
        return PERF_EVENT_TYPE[detail["perf_type"]]
    return BY_PROG_TYPE.get(prog_type, prog_type)


def attach_of(progs):
    """prog id -> {"hook": name, "target": what it is attached to (or "")}, for the given
    prog_info dicts (toolcost.progs()); programs without a link are named by their type."""
    links = {}
    for lid in link_ids():
        got = link_info(lid)
        if got is not None and got[0] in progs:
            links.setdefault(got[0], got[1:])
    out = {}
    for pid, p in progs.items():
        ltype, detail = links.get(pid, (None, {}))
        out[pid] = dict(hook=hook_of(p["type"], ltype, detail), target=detail.get("target", ""),
                        linked=ltype is not None)
    return out
