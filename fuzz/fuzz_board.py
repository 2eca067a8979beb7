"""Coverage-guided fuzzing of the board's frame parser and command dispatch (atheris, libFuzzer).

    .venv/bin/python fuzz/fuzz_board.py -runs=100000 -max_len=1024 WORK_DIR fuzz/corpus
    BLINPUMP_FUZZ_RESET_EVERY=1 .venv/bin/python fuzz/fuzz_board.py crash-<sha1>   # replay one input

The target is the simulated board (firmware/simboard.py make_board): Board.feed, the Decoder, the
header and arity checks, authentication (firmware/auth.py), the therapy commands (firmware/pump.py,
firmware/kernel.py), the journal and the simulation commands. Run as a script, firmware/ is imported
under atheris.instrument_imports(), so libFuzzer sees its branches; imported as a module (the smoke
test, tests/test_fuzz_smoke.py), nothing is instrumented and the same one-input function runs plainly.

Input format (fuzz/make_corpus.py writes seeds in it):
  byte 0, low bit 0: RAW. The rest goes to Board.feed as line bytes, then one flag, so the last frame
      is complete: the fuzzer can only reach what an attacker on the wire without keys reaches.
  byte 0, low bit 1: STRUCTURED. The rest is read with atheris.FuzzedDataProvider as 1..8 frame plans
      (read_plans; encode_plans is its inverse): correctly signed with the simulation keys by the role
      allowed to send the command (or another role, a bad role, a replayed or arbitrary counter), a
      plain request, a signed frame with one bit flipped and the CRC fixed up or not, a cut frame, a
      resend of one of the last frames, or raw bytes. Each frame is fed and checked on its own, so
      dispatch past authentication, the kernel and the simulation commands are covered too.

Checks after every feed (a failure raises FuzzCheckFailed, which libFuzzer reports as a crash; so
does any exception out of Board.feed: none is allowed):
  - firmware.kernel.invariant(state) holds; day_ng <= day_cap_ng <= 28000 ng (L2-dose-28);
  - the commanded rate is the bag's rate or 0 (L2-constant-rate), and the simulated motor runs at it
    (unless a FAULT command made the motor stop answering on this board);
  - the output parses with hil/client.py's FrameReader (an independent decoder): only replies,
    events and NAKs, a NAK carries E_BAD_CRC or E_MALFORMED, a reply's first integer is a known
    status; one answer per complete frame (none only for a frame that cut the power mid-write);
  - bounded memory: at most 32 events per feed, the reply cache is one frame, the output buffer is
    drained, the motor has one controller listening; the process's peak RSS grows by at most
    RSS_GROWTH_LIMIT_MB after warm-up;
  - no hang: each input runs in under MAX_INPUT_SECONDS (and libFuzzer's -timeout).

Frames are counted honestly: `frames` is the number of complete frames that reached the decoder
(Decoder.frames + Decoder.bad: good-CRC frames plus NAKed ones), summed over every board used.

Speed: building a board costs about 0.3 ms and a running one a few ms, so by default a board is
reused for RESET_EVERY inputs (cycling through a fresh board, one with a session, and one infusing),
and counters, session and therapy carry over between inputs. An input's effect may then depend on
the inputs before it; BLINPUMP_FUZZ_RESET_EVERY=1 gives every input a fresh board (reproducible).
BLINPUMP_FUZZ_STATS=path keeps the counters of STAT_FIELDS in that file (little-endian int64,
updated after every input through mmap, so they survive libFuzzer's exit), for bench/hardening_fuzz.py.
"""
from __future__ import annotations

import mmap
import os
import resource
import struct
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple, Optional, Sequence, Union

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import atheris  # noqa: E402

if __name__ == "__main__":
    with atheris.instrument_imports(include=["blinpump.firmware"]):
        import blinpump.firmware.codes  # noqa: F401
        import blinpump.firmware.simboard  # noqa: F401  (main, protocol, auth, kernel, pump, journal, simhal)

from blinpump.firmware import codes, journal, kernel  # noqa: E402
from blinpump.firmware import protocol as P  # noqa: E402
from blinpump.firmware import pump, simboard  # noqa: E402
from blinpump.hil import auth as host_auth  # noqa: E402
from blinpump.hil import client as C  # noqa: E402

MODE_RAW, MODE_STRUCTURED = 0, 1
MAX_FRAMES = 8                  # frames per structured input
MAX_RAW_CHUNK = 300             # raw bytes inside a structured input
RECENT = 8                      # frames remembered for resends
MAX_ARGS = P.MAX_INTS - 10      # command arguments an authenticated frame can carry
# ADVANCE within 0..10080 is folded to 0..240 minutes: a 7-day advance is 10080 kernel ticks, which
# would make one input take seconds under instrumentation; longer runs are the tests' business
MAX_FUZZ_ADVANCE_MIN = 240
RESET_EVERY = 1000
START_STATES = ("fresh", "session", "infusing")
MAX_INPUT_SECONDS = 10.0
RSS_WARMUP_INPUTS = 20000
RSS_CHECK_EVERY = 4096
RSS_GROWTH_LIMIT_MB = 256
MAX_WIRE_BYTES = 2 + 2 * P.MAX_BODY_BYTES
SIM_KEYS = host_auth.sim_keys()
PID = 4242

# frame plan kinds; the kind selector's 8 values weight them (3/8 correctly signed)
K_SIGNED, K_PLAIN, K_FLIP, K_CUT, K_RESEND, K_RAW = range(6)
KIND_OF_SELECTOR = (K_SIGNED, K_SIGNED, K_SIGNED, K_PLAIN, K_FLIP, K_CUT, K_RESEND, K_RAW)
COMMANDS = sorted(pump.COMMANDS) + [P.CMD_HELLO, P.CMD_STATUS, P.CMD_EVENTS, P.CMD_ARCHIVE,
                                    simboard.CMD_ADVANCE, simboard.CMD_FAULT, simboard.CMD_RESET]
ARITY = {cid: entry[2] for cid, entry in pump.COMMANDS.items()}
ARITY.update({P.CMD_HELLO: 1, P.CMD_STATUS: 0, P.CMD_EVENTS: 1, P.CMD_ARCHIVE: 1, simboard.CMD_ADVANCE: 1,
              simboard.CMD_FAULT: 2, simboard.CMD_RESET: 0, simboard.CMD_HEAP: 0})
INTERESTING = (0, 1, -1, 2, 255, 256, 0x7E, 0x7D, 0x03, 65535, 65536, 1000000000, 1000000001,
               P.INT_MAX, P.INT_MAX - 1, P.INT_MIN, P.INT_MIN + 1)
# plausible values per (command, argument): what a host would send, and the edges around it
PLAUSIBLE: dict[tuple[int, int], tuple[int, ...]] = {
    (pump.CMD_SETUP, 0): (PID,), (pump.CMD_SETUP, 1): (1, 2, 3, 4),
    (pump.CMD_SETUP, 2): (3000, 5400, 44999, 45000, 70000, 300001), (pump.CMD_SETUP, 3): (0, 5000, 12000, 35001),
    (pump.CMD_SETUP, 4): (0, 1, 4, 9, 10),
    (pump.CMD_BAG, 0): (PID, PID + 1), (pump.CMD_BAG, 1): (0, 1, 2, 3, 1000000000),
    (pump.CMD_BAG, 2): (9000, 28000, 56000, 63000, 196000, 196001),
    (pump.CMD_BAG, 3): (10000, 100800, 240000, 270000, 1000000), (pump.CMD_BAG, 4): (600, 1800, 5000, 10000, 11250),
    (pump.CMD_BAG, 5): (24, 48, 72, 96, 168, 25),
    (pump.CMD_BAG, 6): (0, 1), (pump.CMD_BAG, 7): (0, 60, 2880), (pump.CMD_BAG, 8): (0, 100, 11520),
    (pump.CMD_STOP, 0): tuple(range(0, 13)), (pump.CMD_ACK, 0): (1, 2, 3),
    (pump.CMD_ACK_ALARM, 0): (0, 1, 2, 8, 32, 64, 128, 255), (pump.CMD_REACTION, 0): tuple(range(0, 7)),
    (pump.CMD_REACTION, 1): tuple(range(0, 6)), (pump.CMD_REACTION, 2): (0, 1, 2, 3),
    (pump.CMD_RESOLVED, 0): tuple(range(0, 7)), (pump.CMD_DECIDE, 0): (0, 1, 2),
    (pump.CMD_CYCLE_DECISION, 0): (0, 1, 2), (pump.CMD_UPDATE_PATIENT, 0): (3000, 44999, 45000, 70000),
    (pump.CMD_UPDATE_PATIENT, 1): (0, 5000, 12000), (P.CMD_ARCHIVE, 0): (0, 1, 3, 4, -1),
    (P.CMD_HELLO, 0): (1, 0, 2), (P.CMD_EVENTS, 0): (0, 1, 8, 100, 300),
    (simboard.CMD_ADVANCE, 0): (0, 1, 59, 60, 240, 1440, 10081),
    (simboard.CMD_FAULT, 0): tuple(range(0, 9)), (simboard.CMD_FAULT, 1): (-2, -1, 0, 1, 30, 240, 100),
}
NEXT, LAST = "next", "last"     # counter and SEQ choices besides an explicit value
KNOWN_STATUS = set(codes.STATUS) | set(P.ERRORS)
STAT_FIELDS = ("inputs", "frames", "good_frames", "bad_frames", "answers", "naks", "nak_bad_crc", "nak_malformed",
               "events", "status_ok", "status_kernel_error", "e_malformed", "e_unknown_cmd", "e_arity",
               "e_out_of_state", "e_unauthorised", "e_version", "boards", "power_cuts", "max_input_us")


class FuzzCheckFailed(AssertionError):
    """A property of the board failed for this input (libFuzzer writes the input to a crash file)."""


class FramePlan(NamedTuple):
    """One frame of a structured input, before it meets the board's counters and SEQ."""
    kind: int
    cmd: int = 0
    args: tuple[int, ...] = ()
    role: Optional[int] = None              # None: the role allowed to send cmd
    counter: Union[int, str] = NEXT         # NEXT: above the board's last; LAST: equal to it
    seq: Union[int, str] = NEXT             # NEXT, LAST (the previous frame's) or a value
    pos: int = 0                            # FLIP: bit in the body; CUT: wire bytes kept; RESEND: index
    fix_crc: int = 0                        # FLIP: recompute the CRC after the flip
    raw: bytes = b""                        # RAW


# ---------------------------------------------------------------- structured inputs

def read_plans(fdp: Any) -> list[FramePlan]:
    """The frame plans of a structured input (all but its first byte), read with a
    FuzzedDataProvider. Integers come from the end of the data, RAW bytes from the front."""
    plans = []
    for _ in range(fdp.ConsumeIntInRange(1, MAX_FRAMES)):
        kind = KIND_OF_SELECTOR[fdp.ConsumeIntInRange(0, len(KIND_OF_SELECTOR) - 1)]
        if kind == K_RESEND:
            plans.append(FramePlan(kind, pos=fdp.ConsumeIntInRange(0, RECENT - 1)))
        elif kind == K_RAW:
            plans.append(FramePlan(kind, raw=fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, MAX_RAW_CHUNK))))
        else:
            plans.append(_read_request(fdp, kind))
    return plans


def _read_request(fdp: Any, kind: int) -> FramePlan:
    sel = fdp.ConsumeIntInRange(0, len(COMMANDS))
    cmd = COMMANDS[sel] if sel < len(COMMANDS) else fdp.ConsumeIntInRange(0, 255)
    nargs = ARITY.get(cmd, 0) if fdp.ConsumeIntInRange(0, 7) < 7 else fdp.ConsumeIntInRange(0, MAX_ARGS)
    args = tuple(_read_arg(fdp, cmd, i) for i in range(nargs))
    role: Optional[int] = None
    counter: Union[int, str] = NEXT
    if kind != K_PLAIN:
        sel = fdp.ConsumeIntInRange(0, 7)
        role = None if sel < 6 else fdp.ConsumeIntInRange(1, 3) if sel == 6 else fdp.ConsumeIntInRange(P.INT_MIN, P.INT_MAX)
        sel = fdp.ConsumeIntInRange(0, 7)
        counter = NEXT if sel < 6 else LAST if sel == 6 else fdp.ConsumeIntInRange(P.INT_MIN, P.INT_MAX)
    sel = fdp.ConsumeIntInRange(0, 3)
    seq: Union[int, str] = LAST if sel == 0 else fdp.ConsumeIntInRange(0, 0xFFFF) if sel == 1 else NEXT
    pos = fix_crc = 0
    if kind == K_FLIP:
        pos = fdp.ConsumeIntInRange(0, 8 * P.MAX_BODY_BYTES - 1)
        fix_crc = fdp.ConsumeIntInRange(0, 1)
    elif kind == K_CUT:
        pos = fdp.ConsumeIntInRange(1, 255)
    return FramePlan(kind, cmd, args, role, counter, seq, pos, fix_crc)


def _read_arg(fdp: Any, cmd: int, i: int) -> int:
    sel = fdp.ConsumeIntInRange(0, 3)
    choices = PLAUSIBLE.get((cmd, i), INTERESTING) if sel < 2 else INTERESTING
    if sel < 3:
        return choices[fdp.ConsumeIntInRange(0, len(choices) - 1)]
    return int(fdp.ConsumeIntInRange(P.INT_MIN, P.INT_MAX))


class _Writer:
    """The inverse of FuzzedDataProvider for the calls read_plans makes: ConsumeIntInRange reads
    big-endian bytes backwards from the end (as many as the range needs, value = lo + raw mod
    (range + 1)), ConsumeBytes reads from the front."""

    def __init__(self) -> None:
        self.front = bytearray()
        self.back = bytearray()         # in the order they are read (from the end)

    def int(self, lo: int, hi: int, value: int) -> None:
        if not lo <= value <= hi:
            raise ValueError("%d outside %d..%d" % (value, lo, hi))
        span, n = hi - lo, 0
        while span >> (8 * n):
            n += 1
        self.back += (value - lo).to_bytes(n, "big") if n else b""

    def data(self) -> bytes:
        return bytes(self.front) + bytes(reversed(self.back))


def encode_plans(plans: Sequence[FramePlan]) -> bytes:
    """A structured input (first byte included) that read_plans turns into `plans`."""
    if not 1 <= len(plans) <= MAX_FRAMES:
        raise ValueError("1..%d frames per input" % MAX_FRAMES)
    w = _Writer()
    w.int(1, MAX_FRAMES, len(plans))
    for plan in plans:
        w.int(0, len(KIND_OF_SELECTOR) - 1, KIND_OF_SELECTOR.index(plan.kind))
        if plan.kind == K_RESEND:
            w.int(0, RECENT - 1, plan.pos)
        elif plan.kind == K_RAW:
            w.int(0, MAX_RAW_CHUNK, len(plan.raw))
            w.front += plan.raw
        else:
            _write_request(w, plan)
    return bytes([MODE_STRUCTURED]) + w.data()


def _write_request(w: _Writer, plan: FramePlan) -> None:
    if plan.cmd in COMMANDS:
        w.int(0, len(COMMANDS), COMMANDS.index(plan.cmd))
    else:
        w.int(0, len(COMMANDS), len(COMMANDS))
        w.int(0, 255, plan.cmd)
    if len(plan.args) == ARITY.get(plan.cmd, 0):
        w.int(0, 7, 0)
    else:
        w.int(0, 7, 7)
        w.int(0, MAX_ARGS, len(plan.args))
    for v in plan.args:
        w.int(0, 3, 3)
        w.int(P.INT_MIN, P.INT_MAX, v)
    if plan.kind != K_PLAIN:
        if plan.role is None:
            w.int(0, 7, 0)
        elif 1 <= plan.role <= 3:
            w.int(0, 7, 6)
            w.int(1, 3, plan.role)
        else:
            w.int(0, 7, 7)
            w.int(P.INT_MIN, P.INT_MAX, plan.role)
        if plan.counter == NEXT:
            w.int(0, 7, 0)
        elif plan.counter == LAST:
            w.int(0, 7, 6)
        else:
            w.int(0, 7, 7)
            w.int(P.INT_MIN, P.INT_MAX, int(plan.counter))
    if plan.seq == LAST:
        w.int(0, 3, 0)
    elif plan.seq == NEXT:
        w.int(0, 3, 2)
    else:
        w.int(0, 3, 1)
        w.int(0, 0xFFFF, int(plan.seq))
    if plan.kind == K_FLIP:
        w.int(0, 8 * P.MAX_BODY_BYTES - 1, plan.pos)
        w.int(0, 1, plan.fix_crc)
    elif plan.kind == K_CUT:
        w.int(1, 255, plan.pos)


def stuffed(body: bytes) -> bytes:
    """A frame body on the wire: flag, escaped bytes, flag."""
    out = bytearray([P.FLAG])
    for b in body:
        if b in (P.FLAG, P.ESC, P.CTRL_C):
            out.append(P.ESC)
            out.append(b ^ P.ESC_XOR)
        else:
            out.append(b)
    out.append(P.FLAG)
    return bytes(out)


def sealed(content: bytes) -> bytes:
    return content + struct.pack("<I", P.crc(content))


# ---------------------------------------------------------------- the target

class Stats:
    """Counters of STAT_FIELDS, optionally mirrored into a file through mmap after every input."""

    def __init__(self, path: Optional[str] = None) -> None:
        self.values = dict.fromkeys(STAT_FIELDS, 0)
        self._map: Optional[mmap.mmap] = None
        if path:
            size = 8 * len(STAT_FIELDS)
            with open(path, "wb") as f:
                f.write(bytes(size))
            self._file = open(path, "r+b")
            self._map = mmap.mmap(self._file.fileno(), size)

    def flush(self) -> None:
        if self._map is not None:
            struct.pack_into("<%dq" % len(STAT_FIELDS), self._map, 0, *(self.values[k] for k in STAT_FIELDS))

    @staticmethod
    def read(path: str) -> dict[str, int]:
        data = Path(path).read_bytes()
        return dict(zip(STAT_FIELDS, struct.unpack_from("<%dq" % len(STAT_FIELDS), data, 0)))


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


class Target:
    """One simulated board (reused for `reset_every` inputs), fed one input at a time."""

    def __init__(self, reset_every: int = RESET_EVERY, board_class: Optional[type] = None,
                 stats_path: Optional[str] = None) -> None:
        self.reset_every = max(1, reset_every)
        self.board_class = board_class
        self.stats = Stats(stats_path)
        self.rss_baseline_mb = 0.0
        self.sim: Any = None
        self._on_board = 0

    # ---- boards
    def _new_board(self) -> None:
        st = self.stats.values
        state = START_STATES[st["boards"] % len(START_STATES)]
        st["boards"] += 1
        self.sim = simboard.make_board()
        if self.board_class is not None:
            self.sim.board.__class__ = self.board_class
        self.sim.board._take()
        self._on_board = 0
        self.seq = 0
        self.recent: deque[bytes] = deque(maxlen=RECENT)
        self.motor_failed = False
        self._good_seen = self._bad_seen = self._cuts_seen = 0
        if state != "fresh":
            self._setup(C.encode_frame(P.T_REQUEST, self._next_seq(), P.CMD_HELLO, [P.VERSION]))
        if state == "infusing":
            for cmd, args in ((pump.CMD_SETUP, [PID, kernel.IND_MRD, 70000, 0, 0]),
                              (pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0]),
                              (pump.CMD_ACK, [kernel.ACK_PREMED]), (pump.CMD_ACK, [kernel.ACK_SUPERVISION]),
                              (pump.CMD_START, [])):
                self._setup(self._signed(cmd, args, None, NEXT, self._next_seq()))
            if self.sim.board.controller.s.mode != kernel.MODE_RUNNING:
                raise FuzzCheckFailed("the infusing start state does not infuse")

    def _setup(self, frame: bytes) -> None:
        board = self.sim.board
        board.feed(frame)
        board._take()
        self._good_seen, self._bad_seen = board.decoder.frames, board.decoder.bad

    def _next_seq(self) -> int:
        self.seq = self.seq % 0xFFFF + 1
        return self.seq

    # ---- frames
    def _signed(self, cmd: int, args: Sequence[int], role: Optional[int], counter: Union[int, str],
                seq: int) -> bytes:
        if role is None:
            role = host_auth.role_for(cmd, SIM_KEYS) or 3     # HELLO needs none: the bench signs it
        last = self.sim.board.auth.counters.last[role] if 1 <= role <= 3 else 0
        if counter == NEXT:
            counter = min(last + 1, P.INT_MAX)
        elif counter == LAST:
            counter = last
        key = SIM_KEYS.get(role, SIM_KEYS[2])
        return C.encode_signed(key, seq, cmd, list(args), role, int(counter))

    def build(self, plan: FramePlan) -> bytes:
        """The bytes a frame plan puts on the line, given the board's counters and the last SEQ."""
        if plan.kind == K_RAW:
            return plan.raw + bytes([P.FLAG])
        if plan.kind == K_RESEND:
            return self.recent[plan.pos % len(self.recent)] if self.recent else bytes([P.FLAG])
        seq = self.seq if plan.seq == LAST else self._next_seq() if plan.seq == NEXT else int(plan.seq)
        args = list(plan.args)
        if plan.cmd == simboard.CMD_ADVANCE and args and 0 <= args[0] <= simboard.MAX_ADVANCE_MIN:
            args[0] %= MAX_FUZZ_ADVANCE_MIN + 1
        if plan.kind == K_PLAIN:
            frame = C.encode_frame(P.T_REQUEST, seq, plan.cmd, args)
        else:
            frame = self._signed(plan.cmd, args, plan.role, plan.counter, seq)
        self.recent.append(frame)
        if plan.kind == K_CUT:
            return frame[:min(plan.pos, len(frame) - 1)] + bytes([P.FLAG])
        if plan.kind == K_FLIP:
            body = C.FrameReader().feed(frame)[0]
            assert isinstance(body, C.Frame)
            raw = bytearray(sealed(struct.pack("<BBHBB", body.version, body.ftype, body.seq, body.cmd, len(body.ints))
                                   + struct.pack("<%di" % len(body.ints), *body.ints)))
            bit = plan.pos % (8 * len(raw))
            raw[bit // 8] ^= 1 << (bit % 8)
            return stuffed(sealed(bytes(raw[:-4])) if plan.fix_crc else bytes(raw))
        return frame

    # ---- one input
    def one_input(self, data: bytes) -> None:
        """Feed one fuzz input to the board and check it (the function atheris calls)."""
        started = time.perf_counter()
        if self.sim is None or self._on_board >= self.reset_every:
            self._new_board()
        self._on_board += 1
        st = self.stats.values
        st["inputs"] += 1
        if not data or data[0] & 1 == MODE_RAW:
            self._feed(bytes(data[1:]) + bytes([P.FLAG]))
        else:
            for plan in read_plans(atheris.FuzzedDataProvider(bytes(data[1:]))):
                self._feed(self.build(plan))
        elapsed = time.perf_counter() - started
        st["max_input_us"] = max(st["max_input_us"], int(elapsed * 1e6))
        if elapsed > MAX_INPUT_SECONDS:
            raise FuzzCheckFailed("one input took %.1f s (limit %.1f s)" % (elapsed, MAX_INPUT_SECONDS))
        if st["inputs"] % RSS_CHECK_EVERY == 0:
            self._check_rss()
        self.stats.flush()

    def _feed(self, data: bytes) -> None:
        board = self.sim.board
        out = board.feed(data)
        dec = board.decoder
        st = self.stats.values
        good, bad = dec.frames - self._good_seen, dec.bad - self._bad_seen
        cuts = self.sim.power_cuts - self._cuts_seen
        self._good_seen, self._bad_seen, self._cuts_seen = dec.frames, dec.bad, self.sim.power_cuts
        st["frames"] += good + bad
        st["good_frames"] += good
        st["bad_frames"] += bad
        st["power_cuts"] += cuts
        self.check(out, good + bad, cuts)

    # ---- the properties
    def check(self, out: bytes, frames: int, cuts: int) -> None:
        """The safety properties after a feed that completed `frames` frames (see the module doc)."""
        sim = self.sim
        board = sim.board
        s = board.controller.s
        if not kernel.invariant(s):
            raise FuzzCheckFailed("kernel invariant broken: %r" % (board.controller.status(),))
        if not 0 <= s.day_ng <= s.day_cap_ng <= kernel.CAP_FULL_NG_PER_DAY:
            raise FuzzCheckFailed("day_ng %d above the cap %d" % (s.day_ng, s.day_cap_ng))
        if s.motor_ul_per_h not in (0, s.bag_ul_per_h):
            raise FuzzCheckFailed("commanded rate %d is neither the bag's %d nor 0" % (s.motor_ul_per_h, s.bag_ul_per_h))
        self.motor_failed = self.motor_failed or sim.motor.fail
        if not self.motor_failed and sim.motor.ul_per_h != s.motor_ul_per_h:
            raise FuzzCheckFailed("motor runs at %d, commanded %d" % (sim.motor.ul_per_h, s.motor_ul_per_h))
        self._check_output(out, frames, cuts)
        if board.out or max(len(r) for r in board.cache_reply) > MAX_WIRE_BYTES or len(board.controller.listeners) != 1:
            raise FuzzCheckFailed("board buffers grow: out %d, reply cache %d, listeners %d"
                                  % (len(board.out), max(len(r) for r in board.cache_reply), len(board.controller.listeners)))

    def _check_output(self, out: bytes, frames: int, cuts: int) -> None:
        st = self.stats.values
        answers = events = 0
        for f in C.FrameReader().feed(out):
            if not isinstance(f, C.Frame):
                raise FuzzCheckFailed("the board sent a frame that does not parse: %r" % (f,))
            if f.ftype in (P.T_EVENT, P.T_AUTH_EVENT):
                events += 1
                if len(f.ints) != (4 if f.ftype == P.T_EVENT else 4 + 2 + P.MAC_INTS):
                    raise FuzzCheckFailed("event with %d integers" % len(f.ints))
                continue
            answers += 1
            if f.ftype == P.T_NAK:
                if f.ints not in ((P.E_BAD_CRC,), (P.E_MALFORMED,)) or f.seq or f.cmd:
                    raise FuzzCheckFailed("bad NAK %r" % (f,))
                st["naks"] += 1
                st["nak_bad_crc" if f.ints[0] == P.E_BAD_CRC else "nak_malformed"] += 1
            elif f.ftype in (P.T_REPLY, P.T_AUTH_REPLY) and f.ints and f.ints[0] in KNOWN_STATUS:
                self._count_status(f.ints[0])
            else:
                raise FuzzCheckFailed("not a reply with a known status: %r" % (f,))
        st["answers"] += answers
        st["events"] += events
        if not frames - cuts <= answers <= frames:
            raise FuzzCheckFailed("%d answers to %d frames (%d power cuts)" % (answers, frames, cuts))
        if events > 32:
            raise FuzzCheckFailed("%d events in one feed" % events)

    def _count_status(self, status: int) -> None:
        st = self.stats.values
        if status == kernel.OK:
            st["status_ok"] += 1
        elif status < 100:
            st["status_kernel_error"] += 1
        else:
            name = P.ERRORS[status][0].lower()
            if name in st:
                st[name] += 1

    def _check_rss(self) -> None:
        rss = _peak_rss_mb()
        if self.stats.values["inputs"] <= RSS_WARMUP_INPUTS:
            self.rss_baseline_mb = rss
        elif rss - self.rss_baseline_mb > RSS_GROWTH_LIMIT_MB:
            raise FuzzCheckFailed("peak RSS grew from %.0f MB to %.0f MB" % (self.rss_baseline_mb, rss))


def main() -> None:
    target = Target(int(os.environ.get("BLINPUMP_FUZZ_RESET_EVERY", RESET_EVERY)),
                    stats_path=os.environ.get("BLINPUMP_FUZZ_STATS") or None)
    atheris.Setup(sys.argv, target.one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
