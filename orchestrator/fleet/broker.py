"""Mosquitto security for a fleet: a password file, an ACL and a configuration snippet.

``write_broker_files(fleet, out_dir)`` writes (what ``robopost fleet broker-config`` does):

``passwd``
    one ``user:$7$iterations$salt$hash`` line per account, Mosquitto 2's PBKDF2-SHA512 format (the
    same as ``mosquitto_passwd`` writes; a random 12-byte salt per user).
``acl``
    per robot user: **write** only its own ``state``, ``connection``, ``visualization``,
    ``factsheet``; **read** only its own ``order``, ``instantActions``, ``teleop``. The orchestrator
    user reads every robot's state/connection/visualization/factsheet and writes every robot's
    order/instantActions/teleop. Everything else is denied (Mosquitto denies what no rule grants).
``mosquitto.conf``
    the lines to add to the broker's configuration: no anonymous clients, the two files above, a
    1 MiB packet limit (no VDA 5050 message comes near it; bigger ones are cut off at the broker) and
    ``set_tcp_nodelay`` (without it Nagle's algorithm holds small messages back up to 40 ms).

Mosquitto semantics worth knowing (../shared/RECIPES.md): a denied QoS 0 publish is dropped silently
(the client stays connected); a subscription without read rights is granted but delivers nothing.
Started as root, Mosquitto drops to user ``mosquitto`` before reading these files, so when we run as
root the files are handed to that user (mode 0600).
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interfaces.vda5050 import TopicKind, subscription
from orchestrator.fleet.config import FleetConfig, RobotConfig

PBKDF2_ITERATIONS = 1000
"""Iterations of PBKDF2-SHA512 per password (``mosquitto_passwd`` uses 101; more is slower to guess)."""

MAX_PACKET_BYTES = 1024 * 1024

ROBOT_WRITES = (TopicKind.STATE, TopicKind.CONNECTION, TopicKind.VISUALIZATION, TopicKind.FACTSHEET)
ROBOT_READS = (TopicKind.ORDER, TopicKind.INSTANT_ACTIONS, TopicKind.TELEOP)


@dataclass(frozen=True, slots=True)
class BrokerFiles:
    """Where ``write_broker_files`` put the three files."""

    passwd: Path
    acl: Path
    conf: Path


def password_hash(password: str, *, iterations: int = PBKDF2_ITERATIONS, salt: bytes | None = None) -> str:
    """Mosquitto 2's ``$7$`` hash of ``password`` (PBKDF2-HMAC-SHA512, 64-byte key, base64)."""
    salt = os.urandom(12) if salt is None else salt
    key = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def passwd_text(
    fleet: FleetConfig,
    *,
    iterations: int = PBKDF2_ITERATIONS,
    salt: Callable[[], bytes] | None = None,
) -> str:
    """The password file: the orchestrator's account, then every robot's."""
    accounts = [fleet.orchestrator, *(r.account for r in fleet.robots)]
    lines = [
        f"{a.username}:{password_hash(a.password, iterations=iterations, salt=salt() if salt else None)}"
        for a in accounts
    ]
    return "\n".join(lines) + "\n"


def robot_topic(fleet: FleetConfig, robot: RobotConfig, kind: TopicKind) -> str:
    """The robot's own topic of ``kind``."""
    return subscription(
        kind,
        manufacturer=robot.manufacturer,
        serial_number=robot.serial,
        interface=fleet.interface,
        major_version=robot.major_version,
    )


def acl_text(fleet: FleetConfig, source: str = "") -> str:
    """The ACL file: the orchestrator's rules, then each robot's."""
    majors = sorted({r.major_version for r in fleet.robots} or {"v2"})
    lines = [
        "# robopost fleet ACL, written by `robopost fleet broker-config`"
        + (f" from {source}" if source else ""),
        "# Anything no rule grants is denied. Regenerate rather than edit.",
        "",
        f"user {fleet.orchestrator.username}",
    ]
    for major in majors:
        for kind in ROBOT_WRITES:
            lines.append(f"topic read {subscription(kind, interface=fleet.interface, major_version=major)}")
        for kind in ROBOT_READS:
            lines.append(f"topic write {subscription(kind, interface=fleet.interface, major_version=major)}")
    for robot in fleet.robots:
        lines += ["", f"user {robot.username}"]
        lines += [f"topic write {robot_topic(fleet, robot, kind)}" for kind in ROBOT_WRITES]
        lines += [f"topic read {robot_topic(fleet, robot, kind)}" for kind in ROBOT_READS]
    return "\n".join(lines) + "\n"


def conf_text(passwd: Path, acl: Path, source: str = "") -> str:
    """The configuration snippet to add to ``mosquitto.conf`` after its ``listener`` lines."""
    return "\n".join(
        [
            "# robopost fleet: broker security, written by `robopost fleet broker-config`"
            + (f" from {source}" if source else ""),
            "# Add to mosquitto.conf after the listener lines (per_listener_settings false).",
            "allow_anonymous false",
            f"password_file {passwd}",
            f"acl_file {acl}",
            f"max_packet_size {MAX_PACKET_BYTES}",
            "# Small messages go out at once (no Nagle delay of up to 40 ms on the way to subscribers).",
            "set_tcp_nodelay true",
            "",
        ]
    )


def write_broker_files(
    fleet: FleetConfig,
    out_dir: Path,
    *,
    source: str = "",
    iterations: int = PBKDF2_ITERATIONS,
    owner: str | None = "mosquitto",
) -> BrokerFiles:
    """Write ``passwd``, ``acl`` and ``mosquitto.conf`` into ``out_dir`` (created if missing).

    The password and ACL files get mode 0600; when we run as root and user ``owner`` exists, they are
    handed to that user (Mosquitto reads them after dropping root).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files = BrokerFiles(out_dir / "passwd", out_dir / "acl", out_dir / "mosquitto.conf")
    _write_private(files.passwd, passwd_text(fleet, iterations=iterations), owner)
    _write_private(files.acl, acl_text(fleet, source), owner)
    files.conf.write_text(conf_text(files.passwd.resolve(), files.acl.resolve(), source), encoding="utf-8")
    return files


def _write_private(path: Path, text: str, owner: str | None) -> None:
    """Write ``text`` readable by its owner only; give it to ``owner`` when we are root."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    path.chmod(0o600)
    if owner is not None and os.geteuid() == 0:
        try:
            user = pwd.getpwnam(owner)
        except KeyError:
            return
        os.chown(path, user.pw_uid, user.pw_gid)
