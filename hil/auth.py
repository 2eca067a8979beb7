"""Host side of authenticated commands (docs/security.md): keys, roles, HMAC-SHA256 signing.

Written independently of firmware/auth.py (this side uses the standard library's `hmac`, the
board a hand-written RFC 2104 over `hashlib.sha256`), so a mistake on one side cannot hide
behind the other; tests check both against the RFC 4231 vectors.

Key files: JSON `{"pharmacy": "<64 hex>", "clinician": "...", "bench": "..."}` (any subset),
kept by the host with mode 0600; `keys.bin` is the board's copy (firmware/auth.py
encode_keys), written to the board's flash over USB by `blinpump keys provision`.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import struct
import tempfile
from pathlib import Path
from typing import Mapping, Union

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import protocol as P
from blinpump.firmware import pump as fw_pump

ROLES = {"pharmacy": fw_auth.ROLE_PHARMACY, "clinician": fw_auth.ROLE_CLINICIAN, "bench": fw_auth.ROLE_BENCH}
ROLE_NAMES = {v: k for k, v in ROLES.items()}
KEY_BYTES = 32
SIM_KEY_PREFIX = b"blinpump simulation key: "
_SIGNED_HEADER = struct.Struct("<BBHBB")

Keys = dict[int, bytes]
KeySpec = Union[str, os.PathLike, Mapping[int, bytes], None]


class KeyFileError(ValueError):
    """A key file or key that cannot be used; the message names the file and the field."""


def sim_keys() -> Keys:
    """The public simulation test keys: sha256(prefix + role name). A simulated board only."""
    return {role: hashlib.sha256(SIM_KEY_PREFIX + name.encode()).digest() for name, role in ROLES.items()}


def new_keys(roles: tuple[str, ...] = tuple(ROLES)) -> Keys:
    return {ROLES[name]: secrets.token_bytes(KEY_BYTES) for name in roles}


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` with mode 0600 whatever was there before (a key file, keys.bin).

    The bytes go to a new file in the same folder, created 0600 (mkstemp), then replace `path`
    in one step: the secret is never readable by others, not even for a moment, and a file that
    was 0644 does not stay 0644 (os.open's mode applies only to a file it creates). A symbolic
    link at `path` is replaced, not followed. OSError if the folder cannot take the file."""
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def save_keys(path: str | os.PathLike[str], keys: Mapping[int, bytes]) -> None:
    """The host's key file, readable by its owner only (mode 0600, whatever was there before)."""
    data = json.dumps({ROLE_NAMES[r]: k.hex() for r, k in sorted(keys.items())}, indent=2) + "\n"
    write_private(path, data.encode())


def load_keys(path: str | os.PathLike[str]) -> Keys:
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise KeyFileError("%s: cannot read key file (%s)" % (p, exc.strerror)) from None
    if raw[:2] == fw_auth.KEYS_MAGIC:
        try:
            return dict(fw_auth.decode_keys(raw))
        except ValueError as exc:
            raise KeyFileError("%s: %s" % (p, exc)) from None
    try:
        doc = json.loads(raw)
    except ValueError:
        raise KeyFileError("%s: neither a JSON key file nor keys.bin" % p) from None
    if not isinstance(doc, dict) or not doc:
        raise KeyFileError("%s: expected an object {role: hex key}" % p)
    keys: Keys = {}
    for name, value in doc.items():
        if name not in ROLES:
            raise KeyFileError("%s: unknown role %r (pharmacy, clinician, bench)" % (p, name))
        try:
            key = bytes.fromhex(value)
        except (TypeError, ValueError):
            raise KeyFileError("%s: %s: key is not hex" % (p, name)) from None
        if len(key) != KEY_BYTES:
            raise KeyFileError("%s: %s: key is %d bytes, need %d" % (p, name, len(key), KEY_BYTES))
        keys[ROLES[name]] = key
    return keys


def resolve(spec: KeySpec) -> Keys:
    """"sim" -> simulation test keys; a path -> its keys; a mapping -> itself; None -> no keys."""
    if spec is None:
        return {}
    if isinstance(spec, str) and spec == "sim":
        return sim_keys()
    if isinstance(spec, (str, os.PathLike)):
        return load_keys(spec)
    return dict(spec)


def board_file(keys: Mapping[int, bytes]) -> bytes:
    """keys.bin for the board."""
    return bytes(fw_auth.encode_keys(dict(keys)))


def role_for(cmd: int, keys: Mapping[int, bytes]) -> int:
    """Which role signs `cmd` (docs/security.md, "Roles"); 0 when none is needed or held."""
    if cmd == P.CMD_HELLO:
        return 0
    if cmd == fw_pump.CMD_BAG:
        want = [fw_auth.ROLE_PHARMACY]
    elif cmd in fw_pump.COMMANDS or cmd == P.CMD_MAINTENANCE:
        want = [fw_auth.ROLE_CLINICIAN]
    elif cmd in (P.CMD_STATUS, P.CMD_EVENTS, P.CMD_AUTH_EVENTS):
        want = [fw_auth.ROLE_BENCH, fw_auth.ROLE_CLINICIAN, fw_auth.ROLE_PHARMACY]
    else:
        want = [fw_auth.ROLE_BENCH]
    for role in want:
        if role in keys:
            return role
    return 0


def sign(key: bytes, seq: int, cmd: int, args: list[int], role: int, counter: int) -> list[int]:
    """The integers of an authenticated request (TYPE 5): the command's arguments, then role,
    counter and the 8-integer MAC over VER..counter (the frame body as the board will see it,
    header included). hil.client.encode_signed makes the frame."""
    n = len(args) + fw_auth.TRAILER_INTS
    body = _SIGNED_HEADER.pack(P.VERSION, P.T_AUTH, seq & 0xFFFF, cmd, n)
    body += struct.pack("<%di" % (len(args) + 2), *args, role, counter)
    mac = hmac.new(key, body, hashlib.sha256).digest()
    return list(args) + [role, counter] + list(struct.unpack("<8i", mac))


def signed_part(key: bytes, ver: int, ftype: int, seq: int, cmd: int, ints: tuple[int, ...]
                ) -> tuple[int, int, tuple[int, ...]] | None:
    """A signed reply (TYPE 6) or event (TYPE 7) checked under `key`: (role, counter, the
    integers before the trailer) when its MAC over VER..counter holds, else None (compared in
    constant time). docs/security.md, "Signed replies and events"."""
    if len(ints) < fw_auth.TRAILER_INTS:
        return None
    head = len(ints) - fw_auth.TRAILER_INTS
    body = _SIGNED_HEADER.pack(ver, ftype, seq & 0xFFFF, cmd, len(ints))
    body += struct.pack("<%di" % (head + 2), *ints[:head + 2])
    mac = struct.pack("<8i", *ints[head + 2:])
    if not hmac.compare_digest(hmac.new(key, body, hashlib.sha256).digest(), mac):
        return None
    return ints[head], ints[head + 1], tuple(ints[:head])

