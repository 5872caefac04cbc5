"""The tool suite's load: stress-ng's YAML report read, the throughput lost, and free ports for the
socket stressors. Pure functions (unit-tested), standard library only."""

import random
import socket

from ..common import median_ci


def parse_metrics(yaml_text, key="bogo-ops-per-second-real-time"):
    """stressor -> bogo-ops per second, from stress-ng's --yaml report (the few lines of it we need,
    read without a YAML parser: the agent is standard library only). key: per second of real time
    (default) or "bogo-ops-per-second-usr-sys-time", per second of the stressor's own CPU time."""
    out, name = {}, None
    for line in yaml_text.splitlines():
        s = line.strip()
        if s.startswith("- stressor:"):
            name = s.split(":", 1)[1].strip()
        elif name and s.startswith(key + ":"):
            out[name] = float(s.split(":", 1)[1])
            name = None
    return out


def free_port():
    """A TCP/UDP port nothing listens on now, from 20000..59999 (bound and released to check)."""
    for _ in range(50):
        port = random.randrange(20000, 60000, 2)
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
                    with socket.socket(socket.AF_INET, kind) as s2:
                        s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    return random.randrange(20000, 60000, 2)


def loss_pct(base, tool):
    """Mean over stressors of the throughput lost with the tool, in % (positive = slower)."""
    names = [n for n in base if n in tool and base[n] > 0]
    if not names:
        return None
    return sum(100.0 * (base[n] - tool[n]) / base[n] for n in names) / len(names)


def per_stressor(pairs):
    """stressor -> median loss % over trials."""
    out = {}
    for name in sorted(set().union(*[set(b) for b, _ in pairs])) if pairs else []:
        losses = [100.0 * (b[name] - t[name]) / b[name] for b, t in pairs if b.get(name) and name in t]
        if losses:
            out[name] = median_ci(losses)[0]
    return out
