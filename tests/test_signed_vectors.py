"""The signed-frame vectors of docs/security.md ("Signed replies and events"): the board's
encoder makes exactly these bytes, the client (an independent HMAC, hil/auth.py) makes the
request and accepts the reply and the event, and a changed byte or another key is refused."""
from __future__ import annotations

import re
from pathlib import Path

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import protocol as P
from blinpump.firmware import simboard
from blinpump.hil import auth as host_auth
from blinpump.hil.client import T_AUTH, Frame, FrameReader, encode_frame, encode_signed

DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"
KEYS = simboard.sim_keys()


def vectors() -> list[tuple[str, int, int, int, list[int], int, int, bytes]]:
    block = re.search(r"```signed-vectors\n(.*?)```", DOC.read_text(), re.S)
    assert block, "docs/security.md has no signed-vectors block"
    out = []
    for line in block.group(1).splitlines():
        name, ftype, seq, cmd, values, role, counter, hexframe = line.split()
        out.append((name, int(ftype), int(seq), int(cmd), [int(v) for v in values.strip("[]").split(",")],
                    int(role), int(counter), bytes.fromhex(hexframe)))
    return out


def test_signed_vectors_cover_a_request_a_reply_and_an_event():
    assert [v[1] for v in vectors()] == [P.T_AUTH, P.T_AUTH_REPLY, P.T_AUTH_EVENT]


def test_the_boards_encoder_makes_the_documented_bytes():
    board = fw_auth.Auth(KEYS)
    for name, ftype, seq, cmd, values, role, counter, raw in vectors():
        made = P.encode(bytearray(), ftype, seq, cmd, values, role, counter, lambda m: board.mac(role, m))
        assert bytes(made) == raw, name


def test_the_client_signs_the_request_and_verifies_the_reply_and_the_event():
    for name, ftype, seq, cmd, values, role, counter, raw in vectors():
        if ftype == T_AUTH:
            assert encode_signed(KEYS[role], seq, cmd, values, role, counter) == raw, name
            continue
        (f,) = FrameReader().feed(raw)
        assert isinstance(f, Frame) and (f.ftype, f.seq, f.cmd) == (ftype, seq, cmd)
        assert host_auth.signed_part(KEYS[role], f.version, f.ftype, f.seq, f.cmd, f.ints) == (
            role, counter, tuple(values)), name
        # another role's key, or any signed integer changed (CRC fixed up), does not verify
        other = KEYS[fw_auth.ROLE_BENCH]
        assert host_auth.signed_part(other, f.version, f.ftype, f.seq, f.cmd, f.ints) is None
        for i in range(len(f.ints) - P.MAC_INTS):
            ints = list(f.ints)
            ints[i] ^= 1
            (g,) = FrameReader().feed(encode_frame(f.ftype, f.seq, f.cmd, ints))
            assert host_auth.signed_part(KEYS[role], g.version, g.ftype, g.seq, g.cmd, g.ints) is None, (name, i)
        assert host_auth.signed_part(KEYS[role], f.version, f.ftype, f.seq ^ 1, f.cmd, f.ints) is None


def test_the_largest_signed_reply_fits_a_frame():
    """STATUS, the longest reply, with its 10-integer trailer within the 64 integers a frame
    holds (docs/protocol.md, "Frames"); EVENTS and ARCHIVE are shorter."""
    assert 1 + len(P.STATUS_FIELDS) + 2 + P.MAC_INTS <= 64
    assert 3 + 5 * P.EVENTS_PER_REPLY + 2 + P.MAC_INTS <= 64     # seq, time, code, a, b each
    assert 2 + len(P.ARCHIVE_FIELDS) + 2 + P.MAC_INTS <= 64
