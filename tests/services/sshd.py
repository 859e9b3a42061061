"""A throwaway OpenSSH server on loopback, for tests of the SFTP backend.

A fresh ed25519 host key and ed25519 user key (no passphrase) are made
with ``ssh-keygen`` in the work directory; ``sshd`` runs in the foreground
on a free 127.0.0.1 port with its own config, public-key login only for
that user key, and the built-in ``internal-sftp`` subsystem. A
``known_hosts`` file pins the host key so clients can check it strictly.
Everything lives under one work directory and is stopped by PID.

    python tests/services/sshd.py start DIR   # prints JSON, also in DIR/service.json
    python tests/services/sshd.py stop DIR
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

try:
    from . import processes
except ImportError:  # run as a script: python tests/services/NAME.py
    import processes  # type: ignore[no-redef]

PACKAGES = ("openssh-server", "openssh-client")
SSHD = "/usr/sbin/sshd"  # sshd refuses to start unless run by its absolute path
PRIVSEP_DIR = Path("/run/sshd")  # sshd's privilege-separation directory


@dataclass
class SshService:
    host: str
    port: int
    user: str
    identity: str  # the user's private key
    known_hosts: str
    host_key_fingerprint: str  # "SHA256:…", as ``ssh-keygen -lf`` prints it
    workdir: str
    pids: list[int]


def installed() -> bool:
    return os.access(SSHD, os.X_OK) and shutil.which("ssh-keygen") is not None


def _config(work: Path, port: int) -> str:
    return f"""ListenAddress 127.0.0.1
Port {port}
HostKey {work}/host_ed25519
PidFile {work}/sshd.pid
AuthorizedKeysFile {work}/authorized_keys
# the work directory may sit under a group-writable tree (e.g. /tmp)
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
PrintMotd no
# parallel tests open many connections and many SFTP channels at once
MaxStartups 100
MaxSessions 100
Subsystem sftp internal-sftp
LogLevel ERROR
"""


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )


def _fingerprint(public_key: Path) -> str:
    out = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(public_key)], check=True, capture_output=True, text=True
    ).stdout
    return out.split()[1]  # "256 SHA256:… comment (ED25519)"


def _privsep_dir() -> None:
    if not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755, parents=True)
        PRIVSEP_DIR.chmod(0o755)  # mkdir's mode is masked by the umask


def start(workdir: str | os.PathLike[str]) -> SshService:
    if not installed():
        raise RuntimeError(f"{SSHD} not found: apt-get install {' '.join(PACKAGES)}")
    work = Path(workdir).resolve()
    if work.exists():
        stop(work)
        shutil.rmtree(work)
    work.mkdir(parents=True)
    _privsep_dir()
    _keygen(work / "host_ed25519", "neostore-test-host")
    _keygen(work / "user_ed25519", "neostore-test-user")
    (work / "authorized_keys").write_text((work / "user_ed25519.pub").read_text())
    port = processes.free_port()
    config = work / "sshd_config"
    config.write_text(_config(work, port))
    test = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if test.returncode != 0:
        raise RuntimeError(f"sshd rejected {config}: {test.stderr.strip()[-2000:]}")
    proc = processes.daemon(
        work / "sshd.out", [SSHD, "-D", "-f", str(config), "-E", str(work / "sshd.log")]
    )
    (work / "pids").write_text(str(proc.pid))
    processes.wait_port(
        proc, "sshd", port, time.monotonic() + 15, work / "sshd.log", work / "sshd.out"
    )
    key_type, key_blob = (work / "host_ed25519.pub").read_text().split()[:2]
    (work / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key_blob}\n")
    service = SshService(
        "127.0.0.1",
        port,
        getpass.getuser(),
        str(work / "user_ed25519"),
        str(work / "known_hosts"),
        _fingerprint(work / "host_ed25519.pub"),
        str(work),
        [proc.pid],
    )
    (work / "service.json").write_text(json.dumps(asdict(service)))
    return service


def stop(workdir: str | os.PathLike[str]) -> None:
    """Stop sshd and the per-connection sshd processes it forked (they
    would otherwise outlive it while a client stays connected)."""
    processes.stop(workdir, grace=5, descendants=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("workdir")
    args = parser.parse_args()
    if args.action == "start":
        print(json.dumps(asdict(start(args.workdir))))
    else:
        stop(args.workdir)


if __name__ == "__main__":
    main()
