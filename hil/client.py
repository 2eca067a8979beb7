"""Host side of the pump's serial protocol (docs/protocol.md), over any pyserial URL.

    with Pump("/dev/pts/7") as pump:          # or socket://host:port, loop://, a Serial object
        pump.setup(4242, IND_RR, 70000, 0)
        pump.bag(4242, 1, 63000, 240000, 168, 1, 0, 0)    # patient, bag identity, drug, ...
        ...
        print(pump.status()["cap_ng_per_day"])

The codec here is written independently of firmware/protocol.py; both are checked against the
test vectors in docs/protocol.md, so a mistake on one side cannot hide behind the other.

Delivery: one request in flight. A reply that is missing, corrupt or NAKed makes the client
resend the *same* frame (same SEQ); the board answers a duplicate from its reply cache, so a
command is applied once however often it is sent. Replies to older SEQs are dropped. If the board
reboots while a request is in flight (its boot event arrives, or it answers E_OUT_OF_STATE), the
client raises BoardRebooted: it cannot know whether the command was applied, so it never guesses.
"""
from __future__ import annotations

import hashlib
import random
import struct
import time
import zlib
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import codes, journal
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.firmware import simboard as SIM
from blinpump.firmware import pump as fw_pump
from blinpump.hil import auth as host_auth

VERSION = 2
FLAG, ESC, ESC_XOR = 0x7E, 0x7D, 0x20
_STUFFED = {0x7E, 0x7D, 0x03}
T_REQUEST, T_REPLY, T_EVENT, T_NAK, T_AUTH, T_AUTH_REPLY, T_AUTH_EVENT = 1, 2, 3, 4, 5, 6, 7
EVENT_TYPES = (T_EVENT, T_AUTH_EVENT)
_HEADER = struct.Struct("<BBHBB")
MAX_BODY_BYTES = 6 + 4 * 64 + 4      # docs/protocol.md: at most 64 integers a frame

EVENT_NAMES = {v: n[3:] for n, v in vars(journal).items() if n.startswith("EV_")}
FAULT_KINDS = {"occlusion": SIM.FAULT_OCCLUSION, "air": SIM.FAULT_AIR, "door": SIM.FAULT_DOOR,
               "low_battery": SIM.FAULT_LOW_BATTERY, "power_cut": SIM.FAULT_POWER_CUT,
               "power_cut_write": SIM.FAULT_POWER_CUT_WRITE, "motor": SIM.FAULT_MOTOR}
REPO = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------- codec

def crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC; check value 0xCBF43926 for b"123456789"."""
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(ftype: int, seq: int, cmd: int, ints: Iterable[int] = ()) -> bytes:
    ints = list(ints)
    for v in ints:
        if not isinstance(v, int) or isinstance(v, bool) or not -2**31 <= v < 2**31:
            raise ValueError("argument %r is not a signed 32-bit int" % (v,))
    body = _HEADER.pack(VERSION, ftype, seq & 0xFFFF, cmd, len(ints)) + struct.pack("<%di" % len(ints), *ints)
    body += struct.pack("<I", crc32(body))
    out = bytearray([FLAG])
    for b in body:
        out += bytes((ESC, b ^ ESC_XOR)) if b in _STUFFED else bytes((b,))
    out.append(FLAG)
    return bytes(out)


def encode_signed(key: bytes, seq: int, cmd: int, args: list[int], role: int, counter: int) -> bytes:
    """An authenticated request (TYPE 5) signed with `key` as `role` (docs/security.md)."""
    return encode_frame(T_AUTH, seq, cmd, host_auth.sign(key, seq, cmd, list(args), role, counter))


class Frame(NamedTuple):
    ftype: int
    seq: int
    cmd: int
    ints: tuple[int, ...]
    version: int = VERSION


class BadFrame(NamedTuple):
    reason: str      # "crc", "short", "length", "escape", "overflow"
    raw: bytes


class FrameReader:
    """Bytes in, frames out; resynchronises on every 0x7E (garbage yields BadFrame, never a Frame)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.esc = False
        self.broken = ""

    def feed(self, data: bytes) -> list[Frame | BadFrame]:
        out: list[Frame | BadFrame] = []
        for b in data:
            if b == FLAG:
                if self.buf or self.broken or self.esc:
                    out.append(self._finish())
                self.buf, self.esc, self.broken = bytearray(), False, ""
            elif self.broken:
                continue
            elif b == ESC:
                self.esc = True
            else:
                if self.esc:
                    b ^= ESC_XOR
                    self.esc = False
                self.buf.append(b)
                if len(self.buf) > MAX_BODY_BYTES:
                    self.broken = "overflow"
        return out

    def _finish(self) -> Frame | BadFrame:
        body = bytes(self.buf)
        if self.broken or self.esc:
            return BadFrame(self.broken or "escape", body)
        if len(body) < 10:
            return BadFrame("short", body)
        if struct.unpack_from("<I", body, len(body) - 4)[0] != crc32(body[:-4]):
            return BadFrame("crc", body)
        ver, ftype, seq, cmd, n = _HEADER.unpack_from(body)
        if 6 + 4 * n + 4 != len(body):
            return BadFrame("length", body)
        return Frame(ftype, seq, cmd, struct.unpack_from("<%di" % n, body, 6), ver)


# ---------------------------------------------------------------- errors and statuses

def describe(code: int) -> tuple[str, str, str]:
    """(name, clause, text) of a kernel status (firmware/codes.py) or a protocol error."""
    if code in codes.STATUS:
        return codes.STATUS[code]
    if code in P.ERRORS:
        name, text = P.ERRORS[code]
        return name, "protocol", text
    return "E_UNKNOWN(%d)" % code, "", "unknown status"


def status_code(name: str) -> int:
    for code, entry in list(codes.STATUS.items()) + [(c, (e[0],)) for c, e in P.ERRORS.items()]:
        if entry[0] == name:
            return code
    raise KeyError("unknown status name %r" % name)


class Status(int):
    """A kernel status: compares as its int code; knows its name and label clause."""

    @property
    def name(self) -> str:
        return describe(self)[0]

    @property
    def clause(self) -> str:
        return describe(self)[1]

    @property
    def ok(self) -> bool:
        return self == k.OK

    def __repr__(self) -> str:
        return codes.describe(int(self)) if int(self) in codes.STATUS else self.name


class PumpError(Exception):
    """A protocol-level refusal (malformed, unknown command, wrong arity, version, unauthorised...)."""

    def __init__(self, code: int, what: str = "", reason: int = 0) -> None:
        self.code = code
        self.reason = reason        # E_UNAUTHORISED: firmware/auth.py R_*
        self.name, self.clause, self.text = describe(code)
        if code == P.E_UNAUTHORISED and 0 < reason < len(fw_auth.REASONS):
            self.text = "not authorised: %s" % fw_auth.REASONS[reason]
        super().__init__("%s%s [%s]: %s" % (what + ": " if what else "", self.name, self.clause, self.text))


class LinkError(Exception):
    """No valid reply after every retry: the line or the board is down. The request may have
    reached the board and been applied (only its reply was lost): check status() before
    repeating a therapy command, as after BoardRebooted."""


class EventList(list):  # type: ignore[type-arg]
    """Events read from the board's journal, oldest first. `lost` counts the events between
    the requested seq and the first one returned that the board no longer has (its ring
    wrapped, or a record failed its CRC): a gap is reported, never hidden."""

    lost: int = 0


class BoardRebooted(Exception):
    """The board rebooted while a request was in flight; whether it was applied is unknown."""


# ---------------------------------------------------------------- the client

def open_serial(url: str, baudrate: int = 115200, control_lines: bool = True) -> Any:
    """Open a pyserial URL with DTR and RTS held low *before* the port opens, so that opening it
    does not reset a board wired for auto-reset (ESP32, some STM32/RP2040 adapters)."""
    import serial
    if not url:
        raise ValueError("port: empty; give a device (/dev/ttyACM0) or a pyserial URL")
    # exclusive: a second host opening the same port gets an error, not a share of the replies
    ser = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=0.05, exclusive=True)
    if control_lines:
        try:
            ser.dtr = False
            ser.rts = False
        except (AttributeError, OSError, ValueError):
            pass
    try:
        ser.open()
    except OSError:
        if not control_lines:
            raise
        # pseudo-terminals and some adapters refuse modem-control ioctls: open without them
        ser = serial.serial_for_url(url, do_not_open=True, baudrate=baudrate, timeout=0.05, exclusive=True)
        ser.open()
    return ser


class Pump:
    """Typed commands for one pump over one serial link (context manager).

    keys: "sim" (the simulation test keys, the default), a key file path, a {role: key}
    mapping, or None (no keys: only HELLO is accepted). Each command is signed with the key
    of the role allowed to send it (hil/auth.py role_for); counters continue from the board's.
    """

    def __init__(self, port: str | Any, *, timeout_s: float = 1.0, retries: int = 4,
                 baudrate: int = 115200, boot_wait_s: float = 0.0, advance_s_per_min: float = 0.004,
                 on_event: Callable[[dict[str, int]], None] | None = None, hello: bool = True,
                 keys: host_auth.KeySpec = "sim") -> None:
        self.keys = host_auth.resolve(keys)
        self.counters = {role: 0 for role in self.keys}     # last counter used per role
        self.ser = open_serial(port, baudrate) if isinstance(port, str) else port
        self.timeout_s = timeout_s
        self.advance_s_per_min = advance_s_per_min      # MicroPython in WebAssembly: ~0.15 ms a minute
        self.retries = retries
        self.reader = FrameReader()
        self._frames: deque[Frame | BadFrame] = deque()     # read from the line, not yet handled
        self.seq = random.randrange(1, 0xFFFF)
        self.stream: deque[dict[str, int]] = deque(maxlen=4096)   # unsolicited events seen
        self.on_event = on_event
        self.stats = {"requests": 0, "resends": 0, "naks": 0, "bad_frames": 0, "stale_replies": 0,
                      "unverified_replies": 0, "rejected_events": 0, "unordered_events": 0, "bytes_out": 0, "bytes_in": 0}
        self._event_seq: dict[str, int] = {}
        self._new_journal()
        self.info: dict[str, Any] = {}
        self._boot_seen = False
        if hello:
            self.hello(wait_s=boot_wait_s)

    # ---- context manager
    def __enter__(self) -> Pump:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.ser.close()

    # ---- transport
    def _write(self, data: bytes) -> None:
        self.ser.write(data)
        self.stats["bytes_out"] += len(data)

    def _next_frame(self, until: float) -> Frame | BadFrame | None:
        """The next frame from the line, or None if none is complete by `until`."""
        while not self._frames:
            left = until - time.monotonic()
            if left <= 0:
                return None
            self.ser.timeout = min(left, 0.05)
            data = self.ser.read(max(1, getattr(self.ser, "in_waiting", 0)))
            if data:
                self.stats["bytes_in"] += len(data)
                self._frames.extend(self.reader.feed(data))
        return self._frames.popleft()

    def _event(self, f: Frame) -> None:
        """An event from the line. Signed with a key this host holds: kept only if its MAC holds
        and its seq is above the last verified one of its ring ("verified": 1); signed with a
        role whose key it does not hold, or plain (before any command was accepted since boot):
        kept as "verified": 0, a hint to read EVENTS (a signed reply) for."""
        ints, verified = f.ints, 0
        if f.ftype == T_AUTH_EVENT and len(ints) == 4 + fw_auth.TRAILER_INTS:
            role = ints[4]
            if role in self.keys:
                checked = host_auth.signed_part(self.keys[role], f.version, f.ftype, f.seq, f.cmd, ints)
                ring = "security" if f.cmd == journal.EV_AUTH else "therapy"
                if checked is None or checked[1] != ints[0]:
                    self.stats["rejected_events"] += 1      # forged
                    return
                if ints[0] > self._event_seq[ring]:
                    self._event_seq[ring] = ints[0]
                    verified = 1
                else:       # the board's own, but not newer: re-sent, or a journal begun again
                    self.stats["unordered_events"] += 1
            ints = ints[:4]
        seq, time_min, a, b = ints if len(ints) == 4 else (f.seq, -1, 0, 0)
        ev = {"seq": seq, "time_min": time_min, "code": f.cmd, "a": a, "b": b, "verified": verified}
        self.stream.append(ev)
        if f.cmd == journal.EV_BOOT:
            self._boot_seen = True
        if self.on_event:
            self.on_event(ev)

    def pump_events(self, wait_s: float = 0.0) -> list[dict[str, int]]:
        """The unsolicited events received so far and within wait_s (drains the stream)."""
        until = time.monotonic() + wait_s
        while True:
            f = self._next_frame(max(until, time.monotonic() + 0.001))
            if f is None and time.monotonic() >= until:
                break
            if isinstance(f, Frame) and f.ftype in EVENT_TYPES:
                self._event(f)
        out = list(self.stream)
        self.stream.clear()
        return out

    def request(self, cmd: int, args: Iterable[int] = (), timeout_s: float | None = None,
                expect_boot: bool = False) -> tuple[int, ...]:
        """Send one request; return the reply's ints (status first). Re-sends the same SEQ on a
        missing, corrupt or NAKed reply; raises LinkError when every attempt failed."""
        self.seq = self.seq % 0xFFFF + 1
        seq = self.seq
        frame, role, counter = self._frame(seq, cmd, list(args))
        timeout_s = self.timeout_s if timeout_s is None else timeout_s
        self.stats["requests"] += 1
        self._boot_seen = False
        unsigned: tuple[int, ...] = ()      # the last plain answer to a signed request
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["resends"] += 1
            self._write(frame)
            until = time.monotonic() + timeout_s
            damaged = False
            while not (damaged and not self._frames):       # after a NAK or a damaged frame: re-send
                f = self._next_frame(until)                 # once nothing else is queued
                if f is None:
                    break                                       # timed out: re-send
                if isinstance(f, BadFrame):
                    self.stats["bad_frames"] += 1               # maybe it was our reply
                    damaged = True
                elif f.ftype in EVENT_TYPES:
                    self._event(f)
                    if self._boot_seen and not expect_boot:
                        raise BoardRebooted("the board rebooted during %s; it may or may not have "
                                            "been applied: check status()" % _cmd_name(cmd))
                elif f.ftype == T_NAK:
                    self.stats["naks"] += 1
                    damaged = True
                elif f.ftype in (T_REPLY, T_AUTH_REPLY) and f.seq == seq:
                    ints = self._trusted(f, role, counter)
                    if ints is None:
                        self.stats["unverified_replies"] += 1    # forged or damaged: the board's
                        damaged = True                          # cache answers the re-send
                        if f.ftype == T_REPLY:
                            unsigned = f.ints
                    elif attempt and ints[:2] == (P.E_UNAUTHORISED, fw_auth.R_REPLAY):
                        # our own counter, "replayed": an earlier attempt ran and its reply was lost
                        raise LinkError("%s (seq %d): its reply was lost and the re-send was refused as a "
                                        "replay: it was applied once; check status()" % (_cmd_name(cmd), seq))
                    elif ints and ints[0] == P.E_BUSY:
                        time.sleep(0.05)
                        break
                    else:
                        return ints
                else:
                    self.stats["stale_replies"] += 1            # a late reply to an earlier request
        said = ""
        if unsigned:
            said = "; the only answers were unsigned (%s%s), which a signed request's reply never is " \
                   "(a wrong key file?)" % (describe(unsigned[0])[0], " %s" % fw_auth.REASONS[unsigned[1]]
                                            if unsigned[0] == P.E_UNAUTHORISED and len(unsigned) > 1
                                            and 0 < unsigned[1] < len(fw_auth.REASONS) else "")
        raise LinkError("no valid reply to %s (seq %d) after %d attempts%s; it may or may not have been "
                        "applied: check status()" % (_cmd_name(cmd), seq, self.retries + 1, said))

    def _trusted(self, f: Frame, role: int, counter: int) -> tuple[int, ...] | None:
        """The ints of a reply to the request in flight, or None if it cannot be trusted. A
        signed request's reply is signed with the same role's key, for the same counter
        (docs/security.md): the board checks the MAC first and signs every answer to a frame
        whose MAC holds, so a plain answer to it is never trusted (the board sends one only
        when the MAC failed: a wrong key, or a frame changed on the way). A plain request gets
        a plain reply."""
        if not role:
            return f.ints if f.ftype == T_REPLY else None
        if f.ftype == T_REPLY:
            return None
        checked = host_auth.signed_part(self.keys[role], f.version, f.ftype, f.seq, f.cmd, f.ints)
        if checked is None or checked[:2] != (role, counter):
            return None
        return checked[2]

    def _frame(self, seq: int, cmd: int, args: list[int]) -> tuple[bytes, int, int]:
        """(frame, role, counter): a signed frame when a role is needed and its key is held,
        else a plain request, role 0 (the board refuses it for anything but HELLO)."""
        role = host_auth.role_for(cmd, self.keys)
        if not role:
            return encode_frame(T_REQUEST, seq, cmd, args), 0, 0
        counter = self.counters[role] + 1
        if counter > fw_auth.COUNTER_MAX:
            raise PumpError(P.E_UNAUTHORISED, "%s: the %s counter is exhausted; provision new keys"
                            % (_cmd_name(cmd), host_auth.ROLE_NAMES[role]))
        self.counters[role] = counter
        return encode_signed(self.keys[role], seq, cmd, args, role, counter), role, counter

    def _call(self, cmd: int, args: Iterable[int] = (), timeout_s: float | None = None,
              expect_boot: bool = False) -> tuple[int, ...]:
        ints = self.request(cmd, args, timeout_s, expect_boot)
        if not ints:
            raise PumpError(P.E_MALFORMED, _cmd_name(cmd))
        if ints[0] == P.E_OUT_OF_STATE and cmd != P.CMD_HELLO:
            raise BoardRebooted("%s refused: no session (the board rebooted since HELLO); "
                                "call hello() and check status() before repeating it" % _cmd_name(cmd))
        if ints[0] >= 100:
            raise PumpError(ints[0], _cmd_name(cmd), ints[1] if len(ints) > 1 else 0)
        return ints

    def _status(self, cmd: int, args: Iterable[int] = ()) -> Status:
        return Status(self._call(cmd, args)[0])

    # ---- handshake and reading
    def hello(self, wait_s: float = 0.0) -> dict[str, Any]:
        """Version handshake; starts a session. With wait_s, retries until a board has booted."""
        until = time.monotonic() + wait_s
        while True:
            try:
                ints = self.request(P.CMD_HELLO, [VERSION], expect_boot=True)
                break
            except LinkError:
                if time.monotonic() >= until:
                    raise
        info: dict[str, Any] = dict(zip(("status",) + P.HELLO_FIELDS, ints[:6]))
        info["kernel_sha256"] = struct.pack("<8i", *ints[6:14]).hex() if len(ints) >= 14 else ""
        info["build"] = {P.BUILD_SIM: "sim", P.BUILD_PRODUCTION: "production"}.get(info["build_kind"], "?")
        info.update(zip(P.HELLO_AUTH_FIELDS, ints[14:14 + len(P.HELLO_AUTH_FIELDS)]))
        info.update(zip(P.HELLO_STATE_FIELDS, ints[14 + len(P.HELLO_AUTH_FIELDS):]))
        for role, name in host_auth.ROLE_NAMES.items():
            # continue above the last counter the board accepted (after a host restart too)
            if role in self.counters:
                self.counters[role] = max(self.counters[role], info.get("counter_" + name, 0))
        if ints[0] != k.OK:
            raise PumpError(ints[0], "HELLO (board speaks version %d)" % info.get("protocol_version", 0))
        self.info = info
        return info

    def kernel_matches(self, mpy_root: str | Path = REPO / "build" / "mpy") -> bool:
        """True if the board's kernel hash is that of this repository's kernel (the source's, as
        embedded by the build or read from kernel.py; or the .mpy's)."""
        kind = self.info.get("hash_kind")
        source = kind in (P.HASH_SOURCE, P.HASH_EMBEDDED)
        path = REPO / "firmware" / "kernel.py" if source else Path(mpy_root) / "firmware" / "kernel.mpy"
        if kind not in (P.HASH_SOURCE, P.HASH_EMBEDDED, P.HASH_MPY) or not path.exists():
            return False
        return bool(hashlib.sha256(path.read_bytes()).hexdigest() == self.info["kernel_sha256"])

    def status(self) -> dict[str, int]:
        ints = self._call(P.CMD_STATUS)
        d = dict(zip(P.STATUS_FIELDS, ints[1:]))
        self._journal_is(d["events"], "therapy")
        return d

    def _new_journal(self) -> None:
        """The last journal seq of a verified event, per ring (a re-sent recorded event is
        older), for a journal seen from its start."""
        self._event_seq = {"therapy": -1, "security": -1}

    def _journal_is(self, next_seq: int, ring: str) -> None:
        """A signed reply gave the journal's next seq: below the last event verified, the
        board's journal began again (a RESET of a simulated board, a new record after a corrupt
        one), and its new events are not replays."""
        if next_seq <= self._event_seq[ring]:
            self._event_seq[ring] = next_seq - 1

    def events(self, since_seq: int = 0, security: bool = False) -> EventList:
        """Journal events with seq >= since_seq (the board's record, not the live stream): the
        therapy ring, or with security=True the ring of refused requests. `.lost` on the result
        counts events in that range the board no longer has."""
        out = EventList()
        want = max(0, since_seq)
        cmd = P.CMD_AUTH_EVENTS if security else P.CMD_EVENTS
        while True:
            ints = self._call(cmd, [since_seq])
            next_seq, n = ints[1], ints[2]
            self._journal_is(next_seq, "security" if security else "therapy")
            for i in range(n):
                seq, time_min, code, a, b = ints[3 + 5 * i: 8 + 5 * i]
                out.lost += max(0, seq - want)          # seqs the ring no longer holds
                want = seq + 1
                out.append({"seq": seq, "time_min": time_min, "code": code, "a": a, "b": b})
            if n < P.EVENTS_PER_REPLY:
                out.lost += max(0, next_seq - want)
                return out
            since_seq = out[-1]["seq"] + 1

    # ---- therapy commands (firmware/pump.py CMD_*); each returns a Status. Codes may be given by
    # their names (docs/protocol.md, "Codes"): indication "mrd"/"rr"/"consolidation", reaction kind
    # "crs"/"neuro"/"icans"/"seizure"/"other", scale "ctcae"/"astct", ack "premed"/"supervision",
    # STOP reason "clinician"/"bag_change"/...; weights and BSA in kg and m2 (weight_kg=, bsa_m2=)
    def setup(self, patient_id: int, indication: int | str, weight_g: int | None = None, bsa_cm2: int = 0,
              course_cycles: int = 0, *, weight_kg: float | None = None, bsa_m2: float | None = None) -> Status:
        """Enter the patient: weight_g and bsa_cm2 (the kernel's units), or weight_kg and bsa_m2
        (converted as model/ converts them: grams rounded down, so 44.9995 kg stays below 45 kg).
        course_cycles: the site's number of consolidation cycles (L2.3-course, 1..9, required for
        consolidation); 0 for MRD+ and R/R, whose counts are the label's."""
        weight_g, bsa_cm2 = _body(weight_g, bsa_cm2, weight_kg, bsa_m2)
        return self._status(fw_pump.CMD_SETUP, [patient_id, code_of("indication", indication), weight_g, bsa_cm2,
                                                course_cycles])

    def bag(self, patient_id: int, bag_id: int, drug_ng: int, volume_ul: int, rate_ul_per_h: int, duration_h: int,
            preservative: int, room_min: int = 0, fridge_min: int = 0) -> Status:
        """Order a bag as prepared: the drug and the total volume in it (overfill included), the
        rate on its pharmacy label (the site's table rate for the duration, EXT-rates), bag_id
        its identity from the pharmacy label, increasing per patient (the loaded bag's order sent
        again changes nothing; an older identity: E_BAG_ID)."""
        return self._status(fw_pump.CMD_BAG, [patient_id, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h,
                                              preservative, room_min, fridge_min])

    def start(self) -> Status:
        return self._status(fw_pump.CMD_START)

    def stop(self, reason: int | str = k.STOP_CLINICIAN) -> Status:
        return self._status(fw_pump.CMD_STOP, [code_of("reason", reason)])

    def ack(self, what: int | str) -> Status:
        return self._status(fw_pump.CMD_ACK, [code_of("what", what)])

    def ack_alarm(self, bits: int = 255) -> Status:
        return self._status(fw_pump.CMD_ACK_ALARM, [bits])

    def reaction(self, kind: int | str, grade: int, scale: int | str = k.SCALE_CTCAE) -> Status:
        """Enter an adverse reaction with its grade and the grade's scale (L2.4-grading: CTCAE;
        ICANS may be graded ASTCT)."""
        return self._status(fw_pump.CMD_REACTION, [code_of("kind", kind), grade, code_of("scale", scale)])

    def decide(self, discontinue: int) -> Status:
        return self._status(fw_pump.CMD_DECIDE, [discontinue])

    def resolved(self, kind: int | str) -> Status:
        """The open reaction of this kind has resolved (each open kind is resolved on its own)."""
        return self._status(fw_pump.CMD_RESOLVED, [code_of("kind", kind)])

    def cycle_decision(self, new_cycle: int) -> Status:
        """After more than 7 days off not for a reaction: 1 starts a new cycle, 0 goes on (L2.4-new-cycle)."""
        return self._status(fw_pump.CMD_CYCLE_DECISION, [new_cycle])

    def update_patient(self, weight_g: int | None = None, bsa_cm2: int = 0, *, weight_kg: float | None = None,
                       bsa_m2: float | None = None) -> Status:
        """A new weight and BSA (when stopped): the caps follow them (L2-dose-28, L2-weight-45)."""
        weight_g, bsa_cm2 = _body(weight_g, bsa_cm2, weight_kg, bsa_m2)
        return self._status(fw_pump.CMD_UPDATE_PATIENT, [weight_g, bsa_cm2])

    def bag_as_prepared(self, patient_id: int, bag_id: int, mcg_per_day: float, hours: int,
                        room_min: int = 0, fridge_min: int = 0) -> Status:
        """Order a bag as the pharmacy prepares it for `mcg_per_day` over `hours`: the site's rate for
        that duration (EXT-rates), 9/8 of the volume infused (the overfill primes the line), the
        drug that gives that daily dose at that rate, preservative from 72 h (L2.5-durations)."""
        from blinpump.hil.scenarios import prepared_bag
        drug_ng, volume_ul, rate_ul_per_h, preservative = prepared_bag(int(round(mcg_per_day * 1000)), hours)
        return self.bag(patient_id, bag_id, drug_ng, volume_ul, rate_ul_per_h, hours, preservative, room_min,
                        fridge_min)

    def end_therapy(self) -> Status:
        """End this patient's therapy (stopped): the record is archived, then a new set-up is possible."""
        return self._status(fw_pump.CMD_END_THERAPY)

    def archive(self, back: int = 0) -> dict[str, int] | None:
        """The record of the therapy ended `back` therapies ago (0: the newest), or None."""
        ints = self._call(P.CMD_ARCHIVE, [back])
        if ints[0] != k.OK:
            return None
        out = {"archive_seq": ints[1]}
        out.update(zip(P.ARCHIVE_FIELDS, ints[2:]))
        return out

    def overdose(self) -> Status:
        return self._status(fw_pump.CMD_OVERDOSE)

    def flush(self) -> Status:
        return self._status(fw_pump.CMD_FLUSH)

    def remove_bag(self) -> Status:
        return self._status(fw_pump.CMD_REMOVE_BAG)

    def clear_fault(self) -> Status:
        return self._status(fw_pump.CMD_CLEAR_FAULT)

    def maintenance(self) -> Status:
        """MAINTENANCE: on OK the board resets into maintenance (no pump, its REPL free for
        `blinpump flash`); refused while infusing. The link is gone after it."""
        return self._status(P.CMD_MAINTENANCE)

    # ---- simulation only (E_UNKNOWN_CMD from a production build)
    def advance(self, minutes: int) -> int:
        """Fast-forward simulated time; split into the board's per-request limit. Returns now_min."""
        step = self.info.get("max_advance_min") or 0
        if step <= 0:
            raise PumpError(P.E_UNKNOWN_CMD, "ADVANCE (not a simulation build)")
        now = -1
        while minutes > 0:
            n = min(minutes, step)
            ints = self._call(SIM.CMD_ADVANCE, [n], timeout_s=self.timeout_s + n * self.advance_s_per_min)
            if ints[0] != k.OK:
                raise PumpError(ints[0], "ADVANCE %d" % n)
            now = ints[2]
            minutes -= n
        return now

    def inject_fault(self, kind: str | int, value: int = 0) -> Status:
        """occlusion, air, door, low_battery, motor (value 1/0), power_cut (value = outage minutes,
        -1 unknown: the board reboots, and a new session is opened), power_cut_write (value = bytes)."""
        code = FAULT_KINDS[kind] if isinstance(kind, str) else kind
        reboot = code == SIM.FAULT_POWER_CUT
        st = Status(self._call(SIM.CMD_FAULT, [code, value], expect_boot=reboot)[0])
        if reboot:
            self.hello()
        return st

    def heap(self) -> tuple[int, int]:
        """(bytes allocated, bytes free) of the simulated board's heap after a collection;
        (-1, -1) on a CPython board."""
        ints = self._call(SIM.CMD_HEAP)
        return ints[1], ints[2]

    def reset(self) -> Status:
        """Erase the simulated board's record and reboot it (a fresh pump); reopens the session."""
        st = Status(self._call(SIM.CMD_RESET, expect_boot=True)[0])
        self.hello()
        self.stream.clear()
        self._new_journal()         # its own RESET: the board's journal begins again
        return st


def _cmd_name(cmd: int) -> str:
    if cmd in fw_pump.COMMANDS:
        return fw_pump.COMMANDS[cmd][0].upper()
    return {P.CMD_HELLO: "HELLO", P.CMD_STATUS: "STATUS", P.CMD_EVENTS: "EVENTS",
            P.CMD_AUTH_EVENTS: "AUTH_EVENTS", P.CMD_ARCHIVE: "ARCHIVE", P.CMD_MAINTENANCE: "MAINTENANCE",
            SIM.CMD_ADVANCE: "ADVANCE",
            SIM.CMD_FAULT: "FAULT", SIM.CMD_RESET: "RESET", SIM.CMD_HEAP: "HEAP"}.get(cmd, "CMD %d" % cmd)


# ---------------------------------------------------------------- names and units of the codes
CODES: dict[str, dict[str, int]] = {
    "indication": {"mrd": k.IND_MRD, "rr": k.IND_RR, "consolidation": k.IND_CONS},
    "kind": {n[3:].lower(): v for n, v in vars(k).items() if n.startswith("RX_") and n != "RX_NONE"},
    "scale": {"ctcae": k.SCALE_CTCAE, "astct": k.SCALE_ASTCT},
    "what": {"premed": k.ACK_PREMED, "supervision": k.ACK_SUPERVISION},
    "reason": {n[5:].lower(): v for n, v in vars(k).items() if n.startswith("STOP_")},
}


def code_of(field: str, value: int | str) -> int:
    """The protocol's integer for `value`: an int as it is, or a name of CODES[field]; an unknown
    name raises ValueError naming the field and the names it takes."""
    if isinstance(value, str):
        try:
            return CODES[field][value.strip().lower()]
        except KeyError:
            raise ValueError("field=%s: %r is not one of %s" % (field, value, ", ".join(CODES[field]))) from None
    return int(value)


def _body(weight_g: int | None, bsa_cm2: int, weight_kg: float | None, bsa_m2: float | None) -> tuple[int, int]:
    if weight_kg is None:
        if weight_g is None:
            raise ValueError("field=weight_kg: give weight_kg (or weight_g)")
        return int(weight_g), int(bsa_cm2)
    if weight_g is not None:
        raise ValueError("field=weight_kg: give weight_kg or weight_g, not both")
    from blinpump.model.patient import Patient
    p = Patient("mrd", float(weight_kg), None if bsa_m2 is None else float(bsa_m2))
    return p.weight_g, p.bsa_cm2 or 0
