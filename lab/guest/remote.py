"""Remote control over SSH with fabric: per-lab key, pinned host key, banner wait with a deadline."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import paramiko
from fabric import Config, Connection

from lab.core.config import LabError


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


def banner_socket(host: str, port: int, timeout: float = 0.4) -> socket.socket | None:
    """A TCP connection on which an SSH banner has arrived (peeked, so it is still there for the
    SSH client), or None. QEMU's port forward accepts at once even before the guest listens, so
    the banner, not the connect, says sshd is up; reusing the socket spares the emulated guest a
    second connection."""
    try:
        s = socket.create_connection((host, port), timeout=timeout)
    except OSError:
        return None
    try:
        s.settimeout(timeout)
        if s.recv(4, socket.MSG_PEEK).startswith(b"SSH-"):
            s.settimeout(None)
            return s
    except OSError:
        pass
    s.close()
    return None


def connect(host: str, port: int, key: Path | None, known_hosts: Path, user: str = "root", sock=None) -> Connection:
    """A fabric Connection that trusts only the host keys in `known_hosts` (no blind trust, no ssh
    config). With key=None, the user's usual keys and agent are tried."""
    # in_stream False: never read our stdin (none in CI; pytest forbids it), commands get EOF
    cfg = Config(overrides={"load_ssh_configs": False, "run": {"pty": False, "in_stream": False}})
    conn = Connection(host=host, port=port, user=user, config=cfg, connect_timeout=15,
                      connect_kwargs={**({"key_filename": str(key), "look_for_keys": False, "allow_agent": False}
                                         if key else {}),
                                      **({"sock": sock} if sock is not None else {})})
    try:
        conn.client.load_host_keys(str(known_hosts))
    except (OSError, UnicodeDecodeError, paramiko.hostkeys.InvalidHostKey) as e:
        raise LabError(f"cannot read the known_hosts file {known_hosts}: {type(e).__name__}: {e}") from None
    conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    return conn


def fingerprint(key: paramiko.PKey) -> str:
    return f"{key.get_name()} {key.fingerprint}"  # e.g. ssh-ed25519 SHA256:...


def host_key_problem(e: Exception, host: str, port: int, known_hosts: Path) -> str | None:
    """What went wrong with the host key check, in words, or None if `e` is something else."""
    where = f"[{host}]:{port}" if port != 22 else host
    if isinstance(e, paramiko.BadHostKeyException):
        return (f"the host key of {where} does not match the one pinned in {known_hosts}: it presented "
                f"{fingerprint(e.key)}, the file pins {fingerprint(e.expected_key)}")
    if isinstance(e, paramiko.SSHException) and "not found in known_hosts" in str(e):
        return f"{known_hosts} holds no usable host key for {where} (none, or a line that is not a valid key)"
    return None


def open_checked(conn: Connection, known_hosts: Path, fix: str) -> Connection:
    """Open `conn` now (key exchange, host key check, auth): a host key problem becomes a LabError
    saying what changed and `fix` (how to re-pin); any other failure to connect a LabError too."""
    try:
        conn.open()
    except Exception as e:  # noqa: BLE001 - every way of not getting in is reported in words
        conn.close()
        problem = host_key_problem(e, conn.host, conn.port, known_hosts)
        if problem:
            raise LabError(f"{problem}. The connection was refused. {fix}") from None
        raise LabError(f"cannot connect to {conn.user}@{conn.host}:{conn.port}: {type(e).__name__}: {e}") from None
    return conn


def wait_for_ssh(host: str, port: int, key: Path, known_hosts: Path, deadline: float, alive) -> Connection:
    """Retry until the guest's sshd answers with its banner and accepts our key against the pinned host
    key, bounded by `deadline` (time.monotonic)."""
    last = "no SSH banner yet"
    while time.monotonic() < deadline:
        problem = alive()
        if problem:
            raise LabError(problem)
        sock = banner_socket(host, port)
        if sock is None:
            time.sleep(0.1)
            continue
        conn = connect(host, port, key, known_hosts, sock=sock)
        try:
            conn.open()  # banner, key exchange, host key check, public key auth
            return conn
        except paramiko.BadHostKeyException as e:
            conn.close()
            raise LabError(str(host_key_problem(e, host, port, known_hosts))) from None
        except Exception as e:  # noqa: BLE001 - no banner yet, or sshd not ready: retry
            last = f"{type(e).__name__}: {e}"
            conn.close()
            time.sleep(0.2)
    raise TimeoutError(last)
