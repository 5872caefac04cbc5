"""Remote control over SSH with fabric: per-lab key, pinned host key, banner wait with a deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import paramiko
from fabric import Config, Connection

from .config import LabError


def make_keypair(dirpath: Path) -> Path:
    """An ed25519 key for one lab: files 0600 in a 0700 directory. Returns the private key path."""
    dirpath.mkdir(parents=True, exist_ok=True)
    os.chmod(dirpath, 0o700)
    key = dirpath / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"lab-{dirpath.name}", "-f", str(key)],
                       check=True)
    os.chmod(key, 0o600)
    os.chmod(key.with_suffix(".pub"), 0o600)
    return key


def pin_host_key(known_hosts: Path, host: str, port: int, host_key_pub: str) -> None:
    keytype, keydata = host_key_pub.split()[:2]
    known_hosts.write_text(f"[{host}]:{port} {keytype} {keydata}\n")
    os.chmod(known_hosts, 0o600)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def banner_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when an SSH server answers with its banner on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def connect(host: str, port: int, key: Path, known_hosts: Path, user: str = "root") -> Connection:
    """A fabric Connection that trusts only the pinned host key (no blind trust, no ssh config)."""
    # in_stream False: never read our stdin (none in CI; pytest forbids it), commands get EOF
    cfg = Config(overrides={"load_ssh_configs": False, "run": {"pty": False, "in_stream": False}})
    conn = Connection(host=host, port=port, user=user, config=cfg, connect_timeout=15,
                      connect_kwargs={"key_filename": str(key), "look_for_keys": False, "allow_agent": False})
    conn.client.load_host_keys(str(known_hosts))
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def wait_for_ssh(host: str, port: int, key: Path, known_hosts: Path, deadline: float, alive) -> Connection:
    """Retry until the banner appears and a command runs, bounded by `deadline` (time.monotonic)."""
    last = "no SSH banner yet"
    while time.monotonic() < deadline:
        problem = alive()
        if problem:
            raise LabError(problem)
        if banner_ready(host, port):
            try:
                conn = connect(host, port, key, known_hosts)
                conn.run("true", hide=True)
                return conn
            except paramiko.BadHostKeyException as e:
                raise LabError(f"the guest's host key does not match the pinned one: {e}") from None
            except Exception as e:  # noqa: BLE001 - sshd may be up before auth works; retry
                last = f"{type(e).__name__}: {e}"
        time.sleep(0.3)
    raise TimeoutError(last)
