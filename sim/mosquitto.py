"""A real Mosquitto broker of our own: own config, own free loopback port, own users and ACL.

Tests (fixtures ``mqtt_broker``/``make_broker``) and benchmarks start their brokers with it. Started as
root, Mosquitto drops to the ``mosquitto`` user before it reads its password, ACL and log files, so the
broker's folder is handed to that user (see ../shared/RECIPES.md). ``restart()`` keeps the port, for
clients that must survive a broker restart. ``conf_extra`` appends ready-made configuration (e.g. the
password file and ACL written by ``robopost fleet broker-config``, placed inside ``dir``).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MosquittoBroker:
    """One Mosquitto process. ``users`` maps user → password (None: anonymous allowed);
    ``acl`` is the text of an ACL file (None: every user may do everything)."""

    def __init__(
        self,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        *,
        folder: Path | None = None,
        conf_extra: str = "",
        log: bool = True,
    ) -> None:
        self.port = free_port()
        self.host = "127.0.0.1"
        self.dir = folder or Path(tempfile.mkdtemp(prefix="robopost-mqtt-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.acl = acl
        self.conf_extra = conf_extra
        self.logging = log
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    def _write_config(self) -> None:
        lines = [f"listener {self.port} 127.0.0.1", "persistence false"]
        lines.append("set_tcp_nodelay true")  # no Nagle delay on small request/ack messages
        if self.logging:
            lines.append(f"log_dest file {self.dir / 'log'}")
            lines.append("log_type error\nlog_type warning\nlog_type notice\nlog_type information")
        else:
            lines.append("log_dest none")
        if self.conf_extra:
            lines.append(self.conf_extra.strip())
        elif self.users is None:
            lines.append("allow_anonymous true")
        else:
            lines.append("allow_anonymous false")
            pwfile = self.dir / "passwd"
            for i, (user, password) in enumerate(self.users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run([MOSQUITTO_PASSWD, *flags, str(pwfile), user, password], check=True)
            lines.append(f"password_file {pwfile}")
        if self.acl is not None:
            (self.dir / "acl").write_text(self.acl, encoding="utf-8")
            lines.append(f"acl_file {self.dir / 'acl'}")
        (self.dir / "mosquitto.conf").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (self.dir / "log").touch()
        if os.geteuid() == 0:
            owner = pwd.getpwnam("mosquitto")
            for path in [self.dir, *self.dir.rglob("*")]:
                os.chown(path, owner.pw_uid, owner.pw_gid)
                if path.is_file():
                    path.chmod(0o600)

    def start(self, timeout: float = 10.0) -> None:
        """Start the broker and return once it accepts connections."""
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.dir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}{self.log()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on {self.port} within {timeout} s")
            # Connection refused comes back at once: wait on the process, not on the clock.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=0.02)

    def stop(self) -> None:
        """Stop the broker (SIGTERM, then SIGKILL)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        """Stop and start again on the same port (clients must reconnect)."""
        self.stop()
        self.start()

    def log(self) -> str:
        try:
            return (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
