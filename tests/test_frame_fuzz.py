"""Every kind of bad frame against a simulated pump that is infusing: a clear error, no therapy change.

L2.5-errors: "preparation and administration instructions must be strictly followed to minimise
medication errors", which docs/protocol.md turns into "no corrupt or partial frame ever changes
therapy". Each test here generates one kind of frame (valid, truncated, corrupted, oversized, wrong
version/type/N, repeated or stale SEQ, unauthenticated, bad MAC, wrong role, replayed counter, unknown
command id, int32 extremes), sends it to a simulated board running a 48 h bag (set up with signed
frames, as a host would) and requires:

1. the answer the protocol documents, predicted by a reference model written here from
   docs/protocol.md and docs/security.md. The model decodes with hil/client.py's FrameReader and
   checks MACs with the standard library's hmac, so it shares no code with the board's decoder or
   firmware/auth.py. A NAK carries E_BAD_CRC or E_MALFORMED; a reply carries the protocol status
   (E_MALFORMED, E_VERSION, E_ARITY, E_UNKNOWN_CMD, E_UNAUTHORISED with its reason) or, for a frame
   that is valid and authorised, the kernel's own status (E_ARG for an out-of-range value...);
2. no therapy change: every field of the kernel State and the rate the simulated motor runs at
   are the same afterwards, and no replay counter moved. Only a valid, authorised frame may change
   anything, and then exactly what the command does: the kernel function applied to a copy of the
   state before (or, for ADVANCE, one kernel tick per minute) gives the state after.

The last test shows the property has teeth: a board that skips the MAC check is caught by it.
"""
from __future__ import annotations

import copy
import hashlib
import hmac
import inspect
import re
import struct
import zlib
from typing import Any, NamedTuple, Optional, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypo import examples
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.firmware import main
from blinpump.firmware import protocol as P
from blinpump.firmware import pump, simboard
from blinpump.hil import auth as host_auth
from blinpump.hil import client as C

# ---------------------------------------------------------------- the documented protocol, host side

SIM_KEYS = host_auth.sim_keys()
PID = 4242
INT_MIN, INT_MAX = -2**31, 2**31 - 1
EXTREMES = (INT_MIN, INT_MIN + 1, INT_MAX - 1, INT_MAX)
HEADER = struct.Struct("<BBHBB")
MAX_BODY = 6 + 4 * 64 + 4
TRAILER = 10                                    # role, counter, 8 x MAC (docs/security.md)
STATUS, EVENTS, HELLO = P.CMD_STATUS, P.CMD_EVENTS, P.CMD_HELLO
ADVANCE, FAULT = simboard.CMD_ADVANCE, simboard.CMD_FAULT
READS = {STATUS: 0, EVENTS: 1, P.CMD_AUTH_EVENTS: 1, P.CMD_ARCHIVE: 1}
THERAPY = {cid: arity for cid, (_, _, arity) in pump.COMMANDS.items()}
SIM = {simboard.CMD_ADVANCE: 1, simboard.CMD_FAULT: 2, simboard.CMD_RESET: 0, simboard.CMD_HEAP: 0}
ARITY = {HELLO: 1, **READS, **THERAPY, **SIM}
UNKNOWN_IDS = sorted(set(range(256)) - set(ARITY))
PHARMACY, CLINICIAN, BENCH = 1, 2, 3
# docs/security.md, "Roles": written out here rather than taken from firmware/auth.py
MAY_SEND = {
    PHARMACY: {pump.CMD_BAG} | set(READS),
    CLINICIAN: (set(THERAPY) - {pump.CMD_BAG}) | set(READS),
    BENCH: set(READS) | set(SIM),
}
R_NOT_AUTHENTICATED, R_NO_KEY, R_BAD_MAC, R_REPLAY, R_ROLE = 1, 2, 3, 4, 5

# the State fields' documented ranges, "# [lo, hi]" in firmware/kernel.py (verify/ proves them)
FIELD_RANGES = {name: (int(lo), int(hi)) for name, lo, hi in re.findall(
    r"self\.(\w+) = [^#\n]*# \[(-?\d+), (-?\d+)\]", inspect.getsource(k.State.__init__))}


def role_of(cmd: int) -> int:
    """The role a correct host signs `cmd` with."""
    if cmd == pump.CMD_BAG:
        return PHARMACY
    if cmd in THERAPY:
        return CLINICIAN
    return BENCH


def seal(content: bytes) -> bytes:
    """A frame body: content, then its CRC-32/ISO-HDLC."""
    return content + struct.pack("<I", zlib.crc32(content) & 0xFFFFFFFF)


def wire(body: bytes) -> bytes:
    """The body as sent: 0x7E, each of 0x7E 0x7D 0x03 escaped, 0x7E."""
    out = bytearray([0x7E])
    for b in body:
        out += bytes((0x7D, b ^ 0x20)) if b in (0x7E, 0x7D, 0x03) else bytes((b,))
    out.append(0x7E)
    return bytes(out)


def content(cmd: int, ints: Sequence[int], seq: int, ftype: int = C.T_REQUEST, ver: int = P.VERSION,
            n: Optional[int] = None) -> bytes:
    """VER..ARG of a frame; `n` overrides the N field (to make it disagree with the length)."""
    return (HEADER.pack(ver, ftype, seq & 0xFFFF, cmd, len(ints) if n is None else n)
            + struct.pack("<%di" % len(ints), *ints))


def signed_body(cmd: int, args: Sequence[int], seq: int, role: int, counter: int,
                key: Optional[bytes] = None, ver: int = P.VERSION, ftype: int = C.T_AUTH) -> bytes:
    """An authenticated request: args, role, counter, then HMAC-SHA256 over VER..counter."""
    signed = content(cmd, list(args) + [role, counter], seq, ftype, ver, n=len(args) + TRAILER)
    mac = hmac.new(key if key is not None else SIM_KEYS[role], signed, hashlib.sha256).digest()
    return seal(signed + mac)


# ---------------------------------------------------------------- the reference model

class Verdict(NamedTuple):
    """What the board must do with one complete frame.
    kind: "nak" (values: its status), "reply" (values: the exact reply), "retry" (the last reply
    again, nothing run), "hello", or "run" (authorised: the command runs; role and counter consumed)."""
    kind: str
    values: tuple[int, ...] = ()
    seq: int = 0
    cmd: int = 0
    role: int = 0
    counter: int = 0
    args: tuple[int, ...] = ()


class LinkModel:
    """The host's model of the board's link state: session, reply cache, replay counters."""

    def __init__(self) -> None:
        self.session = False
        # per role claimed in the trailer (0: plain or unparsable frames): (SEQ, CRC) of the last
        # request answered, and that answer (docs/protocol.md, "Retries")
        self.cache: dict[int, tuple[int, int]] = {}
        self.last_answer: dict[int, C.Frame] = {}
        self.proved = 0                                 # the role the last predicted frame's MAC proved
        self.proved_counter = 0
        self.counters = {PHARMACY: 0, CLINICIAN: 0, BENCH: 0}

    def predict(self, item: C.Frame | C.BadFrame) -> Verdict:
        """The documented answer to one frame as FrameReader decoded it."""
        if isinstance(item, C.BadFrame):
            if item.reason == "crc":
                return Verdict("nak", (P.E_BAD_CRC,))
            if item.reason != "length":                 # short, escape then flag, overflow
                return Verdict("nak", (P.E_MALFORMED,))
            ver, ftype, seq, cmd, n = HEADER.unpack_from(item.raw)
            self.proved = 0
            if (seq, self._crc(item.raw)) == self.cache.get(0):
                return Verdict("retry", seq=seq, cmd=cmd, role=0)
            return Verdict("reply", (P.E_MALFORMED,), seq, cmd)
        body = seal(HEADER.pack(item.version, item.ftype, item.seq, item.cmd, len(item.ints))
                    + struct.pack("<%di" % len(item.ints), *item.ints))
        seq, cmd, ints = item.seq, item.cmd, item.ints
        self.proved = 0
        for slot in (self.slot(item), 0):
            if (seq, self._crc(body)) == self.cache.get(slot):
                return Verdict("retry", seq=seq, cmd=cmd, role=slot)
        authenticated = item.ftype == C.T_AUTH
        mac_reason = 0
        if authenticated and len(ints) >= TRAILER:
            # the MAC first: every answer to a frame whose MAC holds is signed (docs/security.md)
            role, counter = ints[len(ints) - TRAILER], ints[len(ints) - TRAILER + 1]
            signed = len(body) - 4 - 32
            if role not in SIM_KEYS:
                mac_reason = R_NO_KEY
            elif not hmac.compare_digest(hmac.new(SIM_KEYS[role], body[:signed], hashlib.sha256).digest(),
                                         body[signed:signed + 32]):
                mac_reason = R_BAD_MAC
            else:
                self.proved, self.proved_counter = role, counter
        if item.ftype not in (C.T_REQUEST, C.T_AUTH) or (authenticated and len(ints) < TRAILER):
            return Verdict("reply", (P.E_MALFORMED,), seq, cmd)
        if item.version != P.VERSION:
            return Verdict("reply", (P.E_VERSION, P.VERSION), seq, cmd)
        args = ints[:len(ints) - TRAILER] if authenticated else ints
        if cmd not in ARITY:
            return Verdict("reply", (P.E_UNKNOWN_CMD,), seq, cmd)
        if len(args) != ARITY[cmd]:
            return Verdict("reply", (P.E_ARITY,), seq, cmd)
        if cmd == HELLO:
            return Verdict("hello", seq=seq, cmd=cmd, args=tuple(args))
        if cmd not in READS and not self.session:
            return Verdict("reply", (P.E_OUT_OF_STATE,), seq, cmd)
        if not authenticated:
            return Verdict("reply", (P.E_UNAUTHORISED, R_NOT_AUTHENTICATED), seq, cmd)
        role, counter = ints[len(args)], ints[len(args) + 1]
        if mac_reason:
            return Verdict("reply", (P.E_UNAUTHORISED, mac_reason), seq, cmd)
        if counter <= self.counters[role]:
            return Verdict("reply", (P.E_UNAUTHORISED, R_REPLAY), seq, cmd)
        if cmd not in MAY_SEND[role]:
            return Verdict("reply", (P.E_UNAUTHORISED, R_ROLE), seq, cmd)
        return Verdict("run", (), seq, cmd, role, counter, tuple(args))

    @staticmethod
    def slot(item: C.Frame | C.BadFrame) -> int:
        """The reply-cache slot: the role an authenticated frame's trailer claims, else 0."""
        if isinstance(item, C.BadFrame) or item.ftype != C.T_AUTH or len(item.ints) < TRAILER:
            return 0
        role = item.ints[len(item.ints) - TRAILER]
        return role if role in (PHARMACY, CLINICIAN, BENCH) else 0

    def after(self, item: C.Frame | C.BadFrame, verdict: Verdict, answer: C.Frame) -> None:
        """What the board remembers once it has answered."""
        if verdict.kind in ("nak", "retry"):
            return
        raw = item.raw if isinstance(item, C.BadFrame) else seal(
            HEADER.pack(item.version, item.ftype, item.seq, item.cmd, len(item.ints))
            + struct.pack("<%di" % len(item.ints), *item.ints))
        # a role's slot holds only the reply to a frame that consumed its counter; others slot 0
        slot = verdict.role if verdict.kind == "run" else 0
        self.cache[slot] = (verdict.seq, self._crc(raw))
        self.last_answer[slot] = answer
        if verdict.kind == "hello" and verdict.args == (P.VERSION,):
            self.session = True
        if verdict.kind == "run":
            self.counters[verdict.role] = verdict.counter

    @staticmethod
    def _crc(body: bytes) -> int:
        return int(struct.unpack_from("<I", body, len(body) - 4)[0])


def run_oracle(state: k.State, verdict: Verdict) -> tuple[list[int], k.State]:
    """(the reply's leading ints, the state afterwards) of an authorised command, from the kernel
    alone: the function of firmware/kernel.py on a copy, ADVANCE as one tick per minute."""
    expected = copy.copy(state)
    cmd, args = verdict.cmd, verdict.args
    if cmd in THERAPY:
        return [pump.COMMANDS[cmd][1](expected, *args)], expected  # type: ignore[operator]
    if cmd in READS:
        return [k.OK], expected
    if cmd == ADVANCE:
        if not 0 <= args[0] <= simboard.MAX_ADVANCE_MIN:
            return [k.E_ARG, 0, state.now_min], expected
        for _ in range(args[0]):
            k.tick(expected)
        return [k.OK, args[0], expected.now_min], expected
    if cmd == FAULT and not 1 <= args[0] <= 7:
        return [k.E_ARG], expected
    raise AssertionError("no oracle for command %d %r" % (cmd, args))


# ---------------------------------------------------------------- a host and an infusing pump

class Therapy(NamedTuple):
    state: dict[str, int]
    motor_ul_per_h: int


class Host:
    """A simulated board infusing a 48 h bag, and a host that keeps the LinkModel in step with it."""

    RUNNING = [(pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), (pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0]),
               (pump.CMD_ACK, [k.ACK_PREMED]), (pump.CMD_ACK, [k.ACK_SUPERVISION]), (pump.CMD_START, []),
               (ADVANCE, [60])]

    def __init__(self, board_class: Optional[type] = None) -> None:
        self.sim = simboard.make_board()
        if board_class is not None:
            self.sim.board.__class__ = board_class
        self.board = self.sim.board
        self.board._take()
        self.model = LinkModel()
        self.seq = 100
        self.counter = {PHARMACY: 0, CLINICIAN: 0, BENCH: 0}
        assert self.exchange(wire(seal(content(HELLO, [P.VERSION], self.next_seq()))))[0][0].kind == "hello"
        for cmd, args in self.RUNNING:
            self.exchange(self.signed(cmd, args))
        s = self.board.controller.s
        assert s.mode == k.MODE_RUNNING and s.motor_ul_per_h == 5000 and self.sim.motor.ul_per_h == 5000

    def next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    def next_counter(self, role: int) -> int:
        self.counter[role] += 1
        return self.counter[role]

    def signed(self, cmd: int, args: Sequence[int], role: Optional[int] = None, seq: Optional[int] = None) -> bytes:
        """A correct authenticated request, on the wire."""
        role = role_of(cmd) if role is None else role
        return wire(signed_body(cmd, args, self.next_seq() if seq is None else seq, role, self.next_counter(role)))

    def therapy(self) -> Therapy:
        return Therapy(dict(vars(self.board.controller.s)), self.sim.motor.ul_per_h)

    def counters(self) -> list[int]:
        return list(self.board.auth.counters.last)

    def commands_logged(self) -> int:
        return sum(1 for ev in self.board.controller.journal.events(0) if ev[2] == journal.EV_COMMAND)

    def exchange(self, raw: bytes) -> list[tuple[Verdict, C.Frame]]:
        """Send `raw`; check the board's answers against the model's verdicts and the therapy
        against the kernel oracle (authorised frames) or against the state before (all others)."""
        items = C.FrameReader().feed(raw)
        before, counters = self.therapy(), self.counters()
        state = copy.copy(self.board.controller.s)
        out = C.FrameReader().feed(self.board.feed(raw))
        assert all(isinstance(f, C.Frame) for f in out), "the board's output does not parse: %r" % out
        answers = [f for f in out if isinstance(f, C.Frame) and f.ftype not in C.EVENT_TYPES]
        assert len(answers) == len(items), (items, answers)      # one answer per complete frame
        results = []
        for i, (item, answer) in enumerate(zip(items, answers)):
            verdict = self.model.predict(item)
            self._check_answer(verdict, answer, state)
            assert verdict.kind != "run" or i == len(items) - 1, "only the last frame may run"
            self.model.after(item, verdict, answer)
            results.append((verdict, answer))
        ran = [v for v, _ in results if v.kind == "run"]
        if ran:
            expected_ints, expected = run_oracle(state, ran[0])
            assert dict(vars(self.board.controller.s)) == dict(vars(expected)), "not what the command does"
            assert self.sim.motor.ul_per_h == expected.motor_ul_per_h
            assert self.counters()[ran[0].role] == ran[0].counter
        else:
            assert self.therapy() == before, "therapy changed: %r" % (results,)
            assert self.counters() == counters, "a refused frame consumed a replay counter"
        return results

    def _check_answer(self, verdict: Verdict, answer: C.Frame, state: k.State) -> None:
        if verdict.kind == "nak":
            assert (answer.ftype, answer.seq, answer.cmd, answer.ints) == (C.T_NAK, 0, 0, verdict.values)
            return
        if verdict.kind == "retry":
            assert answer == self.model.last_answer.get(verdict.role), "a retry must get the cached reply"
            return
        # a reply to a frame whose MAC held is signed with that role's key for its counter
        # (docs/security.md, "Signed replies and events"); every other reply is plain
        proved = self.model.proved
        assert (answer.ftype, answer.seq, answer.cmd) == (C.T_AUTH_REPLY if proved else C.T_REPLY,
                                                          verdict.seq, verdict.cmd)
        ints = answer.ints
        if proved:
            checked = host_auth.signed_part(SIM_KEYS[proved], answer.version, answer.ftype, answer.seq,
                                            answer.cmd, ints)
            assert checked is not None and checked[:2] == (proved, self.model.proved_counter), answer
            ints = checked[2]
        if verdict.kind == "reply":
            assert ints == verdict.values, (verdict, answer)
        elif verdict.kind == "hello":
            assert ints[:2] == ((k.OK if verdict.args == (P.VERSION,) else P.E_VERSION), P.VERSION)
        else:
            expected, _ = run_oracle(state, verdict)
            if verdict.cmd in READS:
                assert ints[0] == k.OK
                assert verdict.cmd != STATUS or len(ints) == 1 + len(P.STATUS_FIELDS)
            else:
                assert list(ints) == expected, (verdict, answer)

    def check_invariants(self) -> None:
        """The kernel invariant, the documented field ranges, and the plant runs at the commanded
        rate, which is the bag's rate or 0 (L2-constant-rate)."""
        s = self.board.controller.s
        assert k.invariant(s)
        assert len(FIELD_RANGES) >= 40, "the ranges in kernel.State are no longer found"
        for name, (lo, hi) in FIELD_RANGES.items():
            assert lo <= getattr(s, name) <= hi, (name, getattr(s, name))
        assert s.motor_ul_per_h in (0, s.bag_ul_per_h)
        assert self.sim.motor.ul_per_h == s.motor_ul_per_h


def one_verdict(results: list[tuple[Verdict, C.Frame]]) -> Verdict:
    assert len(results) == 1, results
    return results[0][0]


# ---------------------------------------------------------------- strategies

int32 = st.integers(INT_MIN, INT_MAX)


@st.composite
def valid_commands(draw: Any) -> tuple[int, list[int]]:
    """Commands a clinician, pharmacy or bench may send, with plausible and implausible values."""
    cmd = draw(st.sampled_from(sorted(THERAPY) + [STATUS, EVENTS, ADVANCE]))
    plausible = {
        pump.CMD_SETUP: [[PID, PID + 1], [0, 1, 2, 3, 4], [3000, 44999, 45000, 70000], [0, 5000, 12000], [0, 1, 4, 10]],
        pump.CMD_BAG: [[PID, PID + 1], [0, 1, 2, 1000000000], [1, 9000, 56000, 196000, 196001], [5000, 100800, 240000],
                       [600, 1800, 5000, 10000, 11250], [24, 48, 72, 168, 25], [0, 1], [0, 60], [0, 100]],
        pump.CMD_STOP: [list(range(0, 13))],
        pump.CMD_ACK: [[0, 1, 2, 3]],
        pump.CMD_ACK_ALARM: [[-1, 0, 1, 8, 255, 256]],
        pump.CMD_REACTION: [list(range(0, 7)), list(range(0, 6)), [0, 1, 2, 3]],
        pump.CMD_RESOLVED: [list(range(0, 7))],
        pump.CMD_CYCLE_DECISION: [[-1, 0, 1, 2]],
        pump.CMD_UPDATE_PATIENT: [[3000, 44999, 45000, 70000], [0, 5000, 12000]],
        pump.CMD_DECIDE: [[-1, 0, 1, 2]],
        EVENTS: [[0, 1, 5, 100]],
        ADVANCE: [[0, 1, 2, 30]],
    }.get(cmd, [])
    return cmd, [draw(st.sampled_from(values)) for values in plausible]


# commands that would stop the infusing pump if they ran: the frames worth damaging or forging
CHANGING = [(pump.CMD_STOP, [k.STOP_CLINICIAN]), (pump.CMD_STOP, [k.STOP_BAG_CHANGE]),
            (pump.CMD_REACTION, [k.RX_CRS, 3, 1]), (pump.CMD_REACTION, [k.RX_OTHER, 4, 1]), (pump.CMD_OVERDOSE, [])]
changing = st.sampled_from(CHANGING)
SETTINGS = settings(max_examples=examples(200))


# ---------------------------------------------------------------- valid frames

@SETTINGS
@given(commands=st.lists(valid_commands(), min_size=1, max_size=5))
def test_L2_5_errors_valid_signed_frames_do_exactly_what_the_command_does(commands: list[tuple[int, list[int]]]) -> None:
    """The generator makes frames the board accepts: each runs, replies the kernel's status, and
    changes the state exactly as the kernel function (or ADVANCE's ticks) does on a copy."""
    host = Host()
    for cmd, args in commands:
        assert one_verdict(host.exchange(host.signed(cmd, args))).kind == "run"
        host.check_invariants()


# ---------------------------------------------------------------- damaged frames

@SETTINGS
@given(command=changing, cut=st.integers(2, 200))
def test_L2_5_errors_truncated_frame_is_naked_and_changes_nothing(command: tuple[int, list[int]], cut: int) -> None:
    """A frame cut short (then a flag) is answered with a NAK, E_MALFORMED or E_BAD_CRC as the
    independent decoder says, and applies nothing; the whole frame afterwards still runs."""
    host = Host()
    whole = host.signed(*command)
    cut = min(cut, len(whole) - 2)
    verdict = one_verdict(host.exchange(whole[:cut] + b"\x7e"))
    assert verdict.kind == "nak" and verdict.values[0] in (P.E_MALFORMED, P.E_BAD_CRC)
    assert one_verdict(host.exchange(whole)).kind == "run"


@st.composite
def mutated(draw: Any, data: bytes) -> bytes:
    """1 to 3 bit flips, byte insertions or deletions of `data`."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        i = draw(st.integers(0, max(len(out) - 1, 0)))
        if op == "flip" and out:
            out[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            out.insert(i, draw(st.integers(0, 255)))
        elif out:
            del out[i]
    return bytes(out)


@SETTINGS
@given(command=changing, fix_crc=st.booleans(), data=st.data())
def test_L2_5_errors_corrupted_frame_with_or_without_crc_fixup_changes_nothing(
        command: tuple[int, list[int]], fix_crc: bool, data: st.DataObject) -> None:
    """Bit flips, insertions and deletions inside a signed frame's body. With the old CRC the
    frame fails it (NAK); with the CRC fixed up the board decodes a well-formed frame that the
    header checks or the MAC refuse. Either way a clear error, and nothing changes."""
    host = Host()
    body = signed_body(command[0], command[1], host.next_seq(), role_of(command[0]),
                       host.next_counter(role_of(command[0])))
    inner, crc = body[:-4], body[-4:]
    bad = data.draw(mutated(inner))
    assume(bad != inner)
    verdict = one_verdict(host.exchange(wire(seal(bad) if fix_crc else bad + crc)))
    assert verdict.kind in ("nak", "reply", "hello"), verdict
    if verdict.kind == "nak":
        assert verdict.values[0] in (P.E_MALFORMED, P.E_BAD_CRC)
    elif verdict.kind == "reply":
        assert verdict.values[0] in (P.E_MALFORMED, P.E_VERSION, P.E_ARITY, P.E_UNKNOWN_CMD, P.E_UNAUTHORISED)
    host.check_invariants()


@SETTINGS
@given(kind=st.sampled_from(["long body", "big N", "flood"]), size=st.integers(P.MAX_BODY_BYTES + 1, 1200),
       fill=st.binary(min_size=1, max_size=64), fix_crc=st.booleans(), n=st.integers(P.MAX_INTS + 1, 255))
def test_L2_5_errors_oversized_frame_or_flood_is_malformed_and_the_link_recovers(
        kind: str, size: int, fill: bytes, fix_crc: bool, n: int) -> None:
    """More than MAX_BODY_BYTES (266) body bytes: a long body, a frame whose N (65..255) is honest about its
    length, or a flood with no flag at all. One NAK E_MALFORMED, nothing applied, and a valid
    frame right behind it in the same chunk is decoded and run (the receiver resynchronised)."""
    host = Host()
    if kind == "big N":
        junk = wire(seal(content(pump.CMD_STOP, [k.STOP_CLINICIAN] * n, host.next_seq())))
    else:
        raw = (fill * (size // len(fill) + 1))[:size]
        if kind == "flood":
            junk = bytes(b for b in raw if b not in (0x7E, 0x7D)).ljust(size, b"\x55")
        else:
            junk = wire(seal(raw) if fix_crc else raw)
    results = host.exchange(junk + host.signed(STATUS, []))
    assert [v.kind for v, _ in results] == ["nak", "run"]
    assert results[0][0].values == (P.E_MALFORMED,)


@SETTINGS
@given(command=changing, which=st.sampled_from(["version", "type", "short trailer", "count"]),
       ver=st.integers(0, 255).filter(lambda v: v != P.VERSION), ftype=st.integers(0, 255).filter(lambda t: t not in (1, 5)),
       n=st.integers(0, 255))
def test_L2_5_errors_wrong_version_type_or_count_is_refused(
        command: tuple[int, list[int]], which: str, ver: int, ftype: int, n: int) -> None:
    """A good CRC around a bad header: VER other than the protocol's is E_VERSION (second int: the board's
    version); TYPE other than request/authenticated, or an authenticated frame too short for its
    trailer, is E_MALFORMED; N disagreeing with the length is E_MALFORMED."""
    host = Host()
    cmd, args = command
    role = role_of(cmd)
    seq = host.next_seq()
    if which == "version":
        body = signed_body(cmd, args, seq, role, host.next_counter(role), ver=ver)
        expected: tuple[int, ...] = (P.E_VERSION, P.VERSION)
    elif which == "type":
        body = signed_body(cmd, args, seq, role, host.next_counter(role), ftype=ftype)
        expected = (P.E_MALFORMED,)
    elif which == "short trailer":
        body = seal(content(cmd, list(args) + [role, host.next_counter(role)], seq, C.T_AUTH))
        expected = (P.E_MALFORMED,)
    else:
        signed = signed_body(cmd, args, seq, role, host.next_counter(role))
        assume(n != len(args) + TRAILER)
        body = seal(signed[:5] + bytes([n]) + signed[6:-4])
        expected = (P.E_MALFORMED,)
    assert one_verdict(host.exchange(wire(body))) == Verdict("reply", expected, seq, cmd)


# ---------------------------------------------------------------- sequence numbers

@SETTINGS
@given(first=changing, second=valid_commands(), retries=st.integers(1, 3),
       then=st.sampled_from(["retry", "stale", "same seq, bad MAC", "same seq, old counter", "same seq, new request"]))
def test_L2_5_errors_repeated_or_stale_seq_never_applies_a_command_twice(
        first: tuple[int, list[int]], second: tuple[int, list[int]], retries: int, then: str) -> None:
    """A retry (same SEQ, same frame) gets the cached reply, byte for byte, and runs nothing; an
    older frame sent again (stale SEQ) is a replay; a new frame reusing the last SEQ is judged on
    its own: refused if forged or replayed, run if it is a valid new request."""
    host = Host()
    frame = host.signed(*first)
    assert one_verdict(host.exchange(frame)).kind == "run"
    logged = host.commands_logged()
    if then == "retry":
        for _ in range(retries):
            assert one_verdict(host.exchange(frame)).kind == "retry"
        assert host.commands_logged() == logged
        return
    seq = host.seq
    cmd, args = second
    role = role_of(cmd)
    if then == "stale":
        host.exchange(host.signed(cmd, args))
        if role != role_of(first[0]):
            # another role (another host) spoke in between: the first frame is still a retry of
            # its role's last request, answered from that role's cache, never run twice
            assert one_verdict(host.exchange(frame)).kind == "retry"
        else:
            expected = Verdict("reply", (P.E_UNAUTHORISED, R_REPLAY), seq, first[0])
            assert one_verdict(host.exchange(frame)) == expected
    elif then == "same seq, bad MAC":
        body = signed_body(cmd, args, seq, role, host.next_counter(role), key=bytes(32))
        assert one_verdict(host.exchange(wire(body))) == Verdict("reply", (P.E_UNAUTHORISED, R_BAD_MAC), seq, cmd)
    elif then == "same seq, old counter":
        body = signed_body(cmd, args, seq, role, host.model.counters[role])
        verdict = one_verdict(host.exchange(wire(body)))
        assert verdict.kind == "retry" or verdict == Verdict("reply", (P.E_UNAUTHORISED, R_REPLAY), seq, cmd)
    else:
        assert one_verdict(host.exchange(host.signed(cmd, args, seq=seq))).kind == "run"
    assert host.commands_logged() <= logged + 1


# ---------------------------------------------------------------- authentication

@SETTINGS
@given(cmd=st.sampled_from(sorted(THERAPY) + [STATUS, EVENTS, ADVANCE, FAULT]), data=st.data())
def test_L2_5_errors_unauthenticated_therapy_command_is_refused(cmd: int, data: st.DataObject) -> None:
    """A plain request (TYPE 1) with the right arguments: E_UNAUTHORISED, reason 1 (not
    authenticated), whatever the arguments say."""
    host = Host()
    seq = host.next_seq()
    args = data.draw(st.lists(int32, min_size=ARITY[cmd], max_size=ARITY[cmd]))
    verdict = one_verdict(host.exchange(wire(seal(content(cmd, args, seq)))))
    assert verdict == Verdict("reply", (P.E_UNAUTHORISED, R_NOT_AUTHENTICATED), seq, cmd)


FORGERIES = ["flipped MAC bit", "wrong key", "changed after signing", "role not permitted", "no such role",
             "replayed counter"]


@st.composite
def forged_frames(draw: Any, host: Host, command: tuple[int, list[int]],
                  hows: Sequence[str] = FORGERIES) -> tuple[bytes, Verdict]:
    """An authenticated frame that must be refused, and the refusal it must get."""
    cmd, args = command
    how = draw(st.sampled_from(hows))
    seq = host.next_seq()
    role = role_of(cmd)
    reason = R_BAD_MAC
    if how == "flipped MAC bit":
        body = bytearray(signed_body(cmd, args, seq, role, host.next_counter(role)))
        body[draw(st.integers(len(body) - 36, len(body) - 5))] ^= 1 << draw(st.integers(0, 7))
        body = bytearray(seal(bytes(body[:-4])))
    elif how == "wrong key":
        key = draw(st.binary(min_size=32, max_size=32).filter(lambda b: b not in SIM_KEYS.values()))
        body = bytearray(signed_body(cmd, args, seq, role, host.next_counter(role), key=key))
    elif how == "changed after signing":
        body = bytearray(signed_body(cmd, args, seq, role, host.next_counter(role)))
        body[draw(st.sampled_from([2, 3] + list(range(6, 6 + 4 * len(args)))))] ^= 1 << draw(st.integers(0, 7))
        body = bytearray(seal(bytes(body[:-4])))
    elif how == "role not permitted":
        role = draw(st.sampled_from([r for r in MAY_SEND if cmd not in MAY_SEND[r]]))
        body = bytearray(signed_body(cmd, args, seq, role, host.next_counter(role)))
        reason = R_ROLE
    elif how == "no such role":
        body = bytearray(signed_body(cmd, args, seq, draw(int32.filter(lambda r: r not in SIM_KEYS)),
                                     1, key=SIM_KEYS[role]))
        reason = R_NO_KEY
    else:
        last = host.model.counters[role]        # the last counter the board accepted from that role
        body = bytearray(signed_body(cmd, args, seq, role, draw(st.integers(INT_MIN, last))))
        reason = R_REPLAY
    seq = struct.unpack_from("<H", body, 2)[0]  # a changed signed byte may be in SEQ
    return wire(bytes(body)), Verdict("reply", (P.E_UNAUTHORISED, reason), seq, cmd)


def check_forged_frame_is_refused(host: Host, frame: bytes, expected: Verdict) -> None:
    """The property: a forged frame gets the refusal it must get and changes nothing (the host's
    exchange checks the therapy and the counters; it is the same check for every kind of frame)."""
    assert one_verdict(host.exchange(frame)) == expected
    host.check_invariants()


@SETTINGS
@given(command=changing, data=st.data())
def test_L2_5_errors_bad_mac_wrong_role_or_replayed_counter_is_refused(
        command: tuple[int, list[int]], data: st.DataObject) -> None:
    """Bad MAC (flipped bit, wrong key, a signed byte changed), a role not allowed the command, a
    role with no key, a counter not above the last accepted: E_UNAUTHORISED with that reason
    (docs/security.md), and no therapy change."""
    host = Host()
    frame, expected = data.draw(forged_frames(host, command))
    check_forged_frame_is_refused(host, frame, expected)


@SETTINGS
@given(cmd=st.sampled_from(UNKNOWN_IDS), nargs=st.integers(0, 38), signed=st.booleans(), data=st.data())
def test_L2_5_errors_unknown_command_ids_are_refused(cmd: int, nargs: int, signed: bool, data: st.DataObject) -> None:
    """Ids that are no command (plain or correctly signed by any role): E_UNKNOWN_CMD, nothing
    applied and no counter consumed."""
    host = Host()
    args = data.draw(st.lists(int32, min_size=nargs, max_size=nargs))
    role = data.draw(st.sampled_from(sorted(SIM_KEYS)))
    seq = host.next_seq()
    body = signed_body(cmd, args, seq, role, host.next_counter(role)) if signed else seal(content(cmd, args, seq))
    assert one_verdict(host.exchange(wire(body))) == Verdict("reply", (P.E_UNKNOWN_CMD,), seq, cmd)


@SETTINGS
@given(cmd=st.sampled_from([c for c in sorted(THERAPY) if THERAPY[c]] + [EVENTS, ADVANCE, FAULT]),
       stopped=st.booleans(), data=st.data())
def test_L2_5_errors_int32_extreme_arguments_get_the_kernel_status_and_change_nothing(
        cmd: int, stopped: bool, data: st.DataObject) -> None:
    """Authorised commands with at least one argument at an int32 extreme (running or stopped
    pump): the reply is the kernel's status for exactly these values (E_ARG when the range check
    is the first to fail, or the state check before it), never OK for a therapy command, and the
    therapy is unchanged. No value wraps or overflows on the way from the frame to the kernel."""
    host = Host()
    if stopped:
        host.exchange(host.signed(pump.CMD_STOP, [k.STOP_CLINICIAN]))
    arity = ARITY[cmd]
    args = data.draw(st.lists(st.one_of(st.sampled_from(EXTREMES), int32), min_size=arity, max_size=arity))
    at = 0 if cmd == FAULT else data.draw(st.integers(0, arity - 1))
    args[at] = data.draw(st.sampled_from(EXTREMES))
    before = host.therapy()
    verdict, answer = host.exchange(host.signed(cmd, args))[0]
    assert verdict.kind == "run"
    if cmd in THERAPY:
        assert answer.ints[0] != k.OK and answer.ints[0] < 100
    elif cmd != EVENTS:
        assert answer.ints[0] == k.E_ARG
    assert host.therapy() == before
    host.check_invariants()


def test_L2_5_errors_events_from_a_negative_seq_is_answered_like_events_from_0() -> None:
    """Regression, found by the int32-extremes test above: EVENTS with since_seq < 0 made
    Journal.events return the blank ring records (their seq marker -1 is not below the bound), whose
    0xFFFFFFFF seq does not fit the reply's i32. struct.error escaped Board.feed; on a board, run()
    would stop the motor and end the loop. Any key holder (even the bench role) could do it."""
    host = Host()
    [(verdict, from_zero)] = host.exchange(host.signed(EVENTS, [0]))
    logged = host.board.controller.journal.event_seq
    assert verdict.kind == "run" and from_zero.ints[:3] == (k.OK, logged, min(logged, P.EVENTS_PER_REPLY))
    for since in (-1, -300, INT_MIN):
        [(verdict, answer)] = host.exchange(host.signed(EVENTS, [since]))
        # the same integers; the trailers differ (each reply is signed for its request's counter)
        assert verdict.kind == "run" and answer.ints[:-TRAILER] == from_zero.ints[:-TRAILER]


# ---------------------------------------------------------------- every kind, interleaved

class FrameStream(RuleBasedStateMachine):
    """Valid, damaged, forged and re-sent frames in any order against one infusing pump: every
    answer as predicted, the kernel invariant and the documented ranges hold after each, the
    plant runs at the bag's rate or not at all."""

    def __init__(self) -> None:
        super().__init__()
        self.host = Host()
        self.accepted: list[bytes] = []

    @rule(command=valid_commands())
    def valid(self, command: tuple[int, list[int]]) -> None:
        frame = self.host.signed(*command)
        assert one_verdict(self.host.exchange(frame)).kind == "run"
        self.accepted.append(frame)

    @rule(command=changing, fix_crc=st.booleans(), data=st.data())
    def corrupted(self, command: tuple[int, list[int]], fix_crc: bool, data: st.DataObject) -> None:
        body = signed_body(command[0], command[1], self.host.next_seq(), role_of(command[0]),
                                           self.host.next_counter(role_of(command[0])))
        bad = data.draw(mutated(body[:-4]))
        assume(bad != body[:-4])
        verdict = one_verdict(self.host.exchange(wire(seal(bad) if fix_crc else bad + body[-4:])))
        assert verdict.kind != "run"

    @rule(command=changing, cut=st.integers(2, 80))
    def truncated(self, command: tuple[int, list[int]], cut: int) -> None:
        frame = self.host.signed(*command)
        assert one_verdict(self.host.exchange(frame[:min(cut, len(frame) - 2)] + b"\x7e")).kind == "nak"

    @rule(size=st.integers(P.MAX_BODY_BYTES + 1, 600), byte=st.integers(0, 255).filter(lambda b: b not in (0x7E, 0x7D)))
    def flood(self, size: int, byte: int) -> None:
        assert one_verdict(self.host.exchange(bytes([byte]) * size + b"\x7e")).values == (P.E_MALFORMED,)

    @rule(command=changing, data=st.data())
    def forged(self, command: tuple[int, list[int]], data: st.DataObject) -> None:
        frame, expected = data.draw(forged_frames(self.host, command))
        check_forged_frame_is_refused(self.host, frame, expected)

    @rule(cmd=st.sampled_from(sorted(THERAPY)))
    def unauthenticated(self, cmd: int) -> None:
        frame = wire(seal(content(cmd, [1] * THERAPY[cmd], self.host.next_seq())))
        assert one_verdict(self.host.exchange(frame)).values == (P.E_UNAUTHORISED, R_NOT_AUTHENTICATED)

    @rule(cmd=st.sampled_from(UNKNOWN_IDS))
    def unknown(self, cmd: int) -> None:
        assert one_verdict(self.host.exchange(self.host.signed(cmd, [], role=BENCH))).values == (P.E_UNKNOWN_CMD,)

    @rule(data=st.data())
    def resend(self, data: st.DataObject) -> None:
        if self.accepted:
            verdict = one_verdict(self.host.exchange(data.draw(st.sampled_from(self.accepted))))
            assert verdict.kind == "retry" or verdict.values == (P.E_UNAUTHORISED, R_REPLAY)

    @invariant()
    def safe(self) -> None:
        self.host.check_invariants()


TestL2_5ErrorsFrameStream = FrameStream.TestCase
TestL2_5ErrorsFrameStream.settings = settings(max_examples=examples(40), stateful_step_count=30)


# ---------------------------------------------------------------- the property has teeth

class SkipsMacBoard(main.Board):
    """A deliberately broken board: role, counter and permission checked, the MAC never (any
    claimed role with a key is taken as proved)."""

    def _prove_mac(self) -> None:
        signed = self.decoder.length - P.CRC_BYTES - fw_auth.MAC_BYTES
        role, counter = struct.unpack_from("<ii", self.decoder.buf, signed - 8)
        if 1 <= role <= fw_auth.NROLES:
            self._proved_role, self._proved_counter, self._mac_reason = role, counter, 0
        else:
            self._mac_reason = fw_auth.R_NO_KEY


@settings(max_examples=examples(20))
@given(command=changing, how=st.sampled_from(FORGERIES[:3]), data=st.data())
def test_L2_5_errors_the_property_catches_a_board_that_skips_the_mac_check(
        command: tuple[int, list[int]], how: str, data: st.DataObject) -> None:
    """The same check as test_L2_5_errors_bad_mac_wrong_role_or_replayed_counter_is_refused, on a
    board that never compares the MAC: every bad-MAC frame that would stop or alter the infusion
    gets through there, and the check fails for each of them."""
    host = Host(board_class=SkipsMacBoard)
    frame, expected = data.draw(forged_frames(host, command, [how]))
    with pytest.raises(AssertionError):
        check_forged_frame_is_refused(host, frame, expected)
