"""The serial protocol on the host: docs/protocol.md's vectors, both codecs, corrupt frames.

The vectors are read from docs/protocol.md; tests/mpy/test_protocol_mpy.py embeds the same vectors
for MicroPython, and a test here checks the two copies agree.
"""
from __future__ import annotations

import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.firmware import codes
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.firmware import simboard as SIM
from blinpump.firmware import pump as fw_pump
from blinpump.firmware import simboard
from blinpump.hil import auth as host_auth
from blinpump.hil import client as C

REPO = Path(__file__).resolve().parent.parent
DOC = (REPO / "docs" / "protocol.md").read_text()


def _block(name: str) -> list[list[str]]:
    m = re.search(r"```%s\n(.*?)```" % re.escape(name), DOC, re.S)
    assert m, "docs/protocol.md has no ```%s block" % name
    return [line.split() for line in m.group(1).splitlines() if line.strip() and not line.startswith("#")]


def _ints(text: str) -> list[int]:
    inner = text.strip("[]")
    return [int(x) for x in inner.split(",")] if inner else []


FRAMES = [(n, int(t), int(s), int(c), _ints(i), f) for n, t, s, c, i, f in _block("frame-vectors")]
REJECTS = [(n, f, int(e)) for n, f, e in _block("reject-vectors")]
EXCHANGES = [(n, req, rep) for n, req, rep in _block("exchange-vectors")]
CRC_INPUT, CRC_VALUE = _block("crc-check")[0]


def _mpy_test_module():
    # it imports its helpers (fw.py) from tests/mpy/, which is on sys.path only once pytest has
    # collected tests/mpy: put it there, so that this file gives the same answer run alone
    mpy = str(REPO / "tests" / "mpy")
    if mpy not in sys.path:
        sys.path.insert(0, mpy)
    spec = importlib.util.spec_from_file_location("test_protocol_mpy_vectors", REPO / "tests/mpy/test_protocol_mpy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_doc_and_micropython_test_carry_the_same_vectors() -> None:
    m = _mpy_test_module()
    assert m.CRC_CHECK == (CRC_INPUT, int(CRC_VALUE, 16))
    assert [tuple(v) for v in m.FRAME_VECTORS] == [tuple(v) for v in FRAMES]
    assert [tuple(v) for v in m.REJECT_VECTORS] == [tuple(v) for v in REJECTS]
    assert [tuple(v) for v in m.EXCHANGE_VECTORS] == [tuple(v) for v in EXCHANGES]
    assert len(FRAMES) >= 10 and len(REJECTS) >= 3 and len(EXCHANGES) >= 5


def test_crc_check_value_on_both_sides() -> None:
    assert int(CRC_VALUE, 16) == 0xCBF43926
    assert C.crc32(CRC_INPUT.encode()) == P.crc(CRC_INPUT.encode()) == 0xCBF43926


@pytest.mark.parametrize("name,ftype,seq,cmd,ints,hexframe", FRAMES, ids=[f[0] for f in FRAMES])
def test_frame_vector(name: str, ftype: int, seq: int, cmd: int, ints: list[int], hexframe: str) -> None:
    data = bytes.fromhex(hexframe)
    assert C.encode_frame(ftype, seq, cmd, ints) == data
    assert bytes(P.encode(bytearray(), ftype, seq, cmd, ints)) == data
    assert C.FrameReader().feed(data) == [C.Frame(ftype, seq, cmd, tuple(ints))]


@pytest.mark.parametrize("name,hexframe,error", REJECTS, ids=[r[0] for r in REJECTS])
def test_reject_vector(name: str, hexframe: str, error: int) -> None:
    out = C.FrameReader().feed(bytes.fromhex(hexframe))
    assert len(out) == 1 and isinstance(out[0], C.BadFrame)
    assert error in (P.E_BAD_CRC, P.E_MALFORMED)
    assert (out[0].reason == "crc") == (error == P.E_BAD_CRC)


@pytest.mark.parametrize("name,request_hex,reply_hex", EXCHANGES, ids=[e[0] for e in EXCHANGES])
def test_exchange_vector_on_a_fresh_board(name: str, request_hex: str, reply_hex: str) -> None:
    sim = simboard.make_board()
    sim.board._take()
    before = sim.board.controller.status()
    assert sim.board.feed(bytes.fromhex(request_hex)).hex() == reply_hex
    assert sim.board.controller.status() == before


def test_status_names_and_clauses_for_every_code() -> None:
    assert C.describe(k.E_NO_FLUSH)[:2] == ("E_NO_FLUSH", "EXT-no-flush")
    assert C.describe(P.E_BAD_CRC)[:2] == ("E_BAD_CRC", "protocol")
    assert set(codes.STATUS).isdisjoint(P.ERRORS)            # kernel and protocol codes never collide
    assert max(codes.STATUS) < 100 <= min(P.ERRORS)
    st_ = C.Status(k.E_DOSE_CAP)
    assert st_ == k.E_DOSE_CAP and st_.name == "E_DOSE_CAP" and "L2-dose-28" in st_.clause and not st_.ok
    assert C.status_code("E_UNAUTHORISED") == P.E_UNAUTHORISED == 105


def test_every_pump_command_has_a_client_method() -> None:
    for cid, (name, _, arity) in fw_pump.COMMANDS.items():
        assert callable(getattr(C.Pump, name)), name
        assert cid < P.CMD_HELLO


def test_encoder_refuses_values_outside_int32() -> None:
    with pytest.raises(ValueError):
        C.encode_frame(1, 1, 1, [2**31])
    with pytest.raises(ValueError):
        C.encode_frame(1, 1, 1, [True])


_int32 = st.integers(-2**31, 2**31 - 1)


@settings(max_examples=examples(200))
@given(ftype=st.integers(1, 4), seq=st.integers(0, 0xFFFF), cmd=st.integers(0, 255),
       ints=st.lists(_int32, max_size=P.MAX_INTS))
def test_the_two_codecs_agree(ftype: int, seq: int, cmd: int, ints: list[int]) -> None:
    data = C.encode_frame(ftype, seq, cmd, ints)
    assert bytes(P.encode(bytearray(), ftype, seq, cmd, ints)) == data
    dec = P.Decoder()
    results = [dec.push(b) for b in data]
    assert results[-1] == P.FRAME and results.count(P.FRAME) == 1
    assert dec.header() == (P.VERSION, ftype, seq, cmd, len(ints)) and dec.ints(len(ints)) == ints
    assert 0x03 not in data and 0x7E not in data[1:-1]


@settings(max_examples=examples(200))
@given(before=st.binary(max_size=40), after=st.binary(max_size=40), ints=st.lists(_int32, max_size=8))
def test_a_frame_survives_garbage_around_it(before: bytes, after: bytes, ints: list[int]) -> None:
    data = C.encode_frame(1, 77, 2, ints)
    frames = [f for f in C.FrameReader().feed(before + data + after) if isinstance(f, C.Frame)]
    assert C.Frame(1, 77, 2, tuple(ints)) in frames
    assert all(f == C.Frame(1, 77, 2, tuple(ints)) for f in frames)   # garbage never decodes


SIM_KEYS = host_auth.sim_keys()


def _signed(seq: int, cmd: int, args: list[int], counter: int) -> bytes:
    """An authenticated request with the simulation keys, signed by the role allowed to send it."""
    role = host_auth.role_for(cmd, SIM_KEYS)
    return C.encode_signed(SIM_KEYS[role], seq, cmd, args, role, counter)


def _running_board() -> simboard.Sim:
    sim = simboard.make_board()
    b = sim.board
    b.feed(C.encode_frame(1, 1, P.CMD_HELLO, [P.VERSION]))
    for i, (cmd, args) in enumerate([(1, [4242, k.IND_MRD, 70000, 0, 0]), (2, [4242, 1, 56000, 240000, 5000, 48, 0, 0, 0]),
                                     (5, [1]), (5, [2]), (3, [])]):
        b.feed(_signed(10 + i, cmd, args, 10 + i))
    b.feed(_signed(20, SIM.CMD_ADVANCE, [60], 20))
    b._take()
    assert b.controller.s.mode == k.MODE_RUNNING
    return sim


@settings(max_examples=examples(300))
@given(data=st.data())
def test_a_damaged_therapy_frame_never_changes_therapy(data: st.DataObject) -> None:
    """Flip, drop, insert or cut bytes of a STOP, REACTION or OVERDOSE frame (each would stop the
    running pump): the pump does what an intact frame asks, or nothing at all (L2.5-errors)."""
    sim = _running_board()
    cmd, args = data.draw(st.sampled_from([(4, [k.STOP_CLINICIAN]), (7, [k.RX_CRS, 3]), (10, [])]))
    good = bytearray(_signed(30, cmd, args, 30))
    bad = bytearray(good)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "drop", "insert", "cut"]))
        i = data.draw(st.integers(0, len(bad) - 1))
        if op == "flip":
            bad[i] ^= data.draw(st.integers(1, 255))
        elif op == "drop":
            del bad[i]
        elif op == "insert":
            bad.insert(i, data.draw(st.integers(0, 255)))
        else:
            del bad[i:]
        if not bad:
            bad = bytearray(b"\x00")
    before = sim.board.controller.status()
    sim.board.feed(bytes(bad) + b"\x7e")          # a flag after it: the damaged frame is complete
    after = sim.board.controller.status()
    intact = [f for f in C.FrameReader().feed(bytes(bad) + b"\x7e") if isinstance(f, C.Frame)]
    signed = C.FrameReader().feed(bytes(good))
    if intact != signed:
        assert after == before


def test_console_transport_reads_what_waits_passes_ctrl_c_as_data_and_sees_the_end() -> None:
    """main.ConsoleTransport, the pump's line on a board's console (the REPL board and
    `blinpump sim --runtime unix` run it for real): bytes as they come, 0x03 a byte like any."""
    import os
    from blinpump.firmware import main as fw_main
    r, w = os.pipe()
    rx, tx = os.fdopen(r, "rb", buffering=0), io.BytesIO()
    line = fw_main.ConsoleTransport(stdin=rx, stdout=tx)
    assert line.read() is None and not line.closed
    os.write(w, b"\x7e\x03abc")
    assert line.read() == b"\x7e\x03abc"
    os.write(w, bytes(range(200)))
    assert line.read() == bytes(range(fw_main.ConsoleTransport.MAX_READ))      # at most MAX_READ a pass
    line.write(b"reply")
    assert tx.getvalue() == b"reply"
    os.close(w)
    while line.read() is not None:
        pass
    assert line.closed
    rx.close()
