"""Serial protocol of the pump companion (docs/protocol.md): framing, CRC, codes.

Runs on the board (MicroPython) and on CPython. Byte-stuffed frames, HDLC style:

    0x7E | stuffed( VER u8 | TYPE u8 | SEQ u16 | CMD u8 | N u8 | N x i32 | CRC32 u32 ) | 0x7E

all little-endian; CRC-32/ISO-HDLC (binascii.crc32, check value 0xCBF43926) over VER..payload.
0x7E, 0x7D and 0x03 never appear inside a frame: each is sent as 0x7D, byte ^ 0x20
(0x03 is Ctrl-C on a USB REPL, so a frame never interrupts the board).

A frame is only ever acted on when its CRC matches; a corrupt or partial frame changes
nothing (L2.5-errors) and is answered with a NAK so the host can resend the same SEQ.
Decoding allocates nothing per byte: one receive buffer, filled in place.
"""
import struct

from binascii import crc32

VERSION = 2

FLAG = 0x7E
ESC = 0x7D
ESC_XOR = 0x20
CTRL_C = 0x03

# frame types
T_REQUEST = 1
T_REPLY = 2
T_EVENT = 3
T_NAK = 4           # answer to a frame that failed its CRC or could not be delimited
T_AUTH = 5          # request with an HMAC trailer: role, counter, 8 x mac (firmware/auth.py)
T_AUTH_REPLY = 6    # reply to a T_AUTH request whose MAC held, signed with that role's key, same trailer
T_AUTH_EVENT = 7    # event signed with the key of the role last accepted; trailer counter = event seq
MAC_INTS = 8        # the 32 bytes of an HMAC-SHA256 as 8 i32

HEADER_BYTES = 6
CRC_BYTES = 4
MAX_INTS = 64
MAX_BODY_BYTES = HEADER_BYTES + 4 * MAX_INTS + CRC_BYTES
MIN_BODY_BYTES = HEADER_BYTES + CRC_BYTES
INT_MIN = -2147483648
INT_MAX = 2147483647

# commands: 1..16 are the therapy commands, firmware/pump.py CMD_* (same ids)
CMD_HELLO = 32      # [host protocol version] -> hello fields
CMD_STATUS = 33     # [] -> STATUS_FIELDS
CMD_EVENTS = 34     # [since_seq] -> next_seq, n, n x (seq, time_min, code, a, b): therapy events
CMD_AUTH_EVENTS = 35    # [since_seq] -> the same, from the security ring (refused requests, EV_AUTH)
CMD_ARCHIVE = 36    # [back] -> archive seq, ARCHIVE_FIELDS of the therapy ended `back` therapies ago
CMD_MAINTENANCE = 37    # [] -> OK, then the board resets into maintenance (no pump, REPL): for flashing
# 48..63: simulation commands, defined and served by firmware/simboard.py only, so that
# a production build (hil/build.py --production) does not contain them

# protocol status codes; 0..99 are the kernel's (firmware/kernel.py, firmware/codes.py)
E_MALFORMED = 100       # wrong length, type or escape; nothing applied
E_BAD_CRC = 101         # CRC mismatch; nothing applied
E_UNKNOWN_CMD = 102
E_ARITY = 103           # wrong number of arguments for the command
E_OUT_OF_STATE = 104    # no session: HELLO first (also after every reboot)
E_UNAUTHORISED = 105    # not authenticated, bad MAC, replayed counter or role not permitted
E_BUSY = 106            # reserved: the board cannot take a request now; resend the same SEQ later
E_VERSION = 107         # protocol version not supported

ERRORS = {
    E_MALFORMED: ("E_MALFORMED", "frame malformed (length, type or escape); nothing applied"),
    E_BAD_CRC: ("E_BAD_CRC", "frame failed its CRC; nothing applied"),
    E_UNKNOWN_CMD: ("E_UNKNOWN_CMD", "unknown command"),
    E_ARITY: ("E_ARITY", "wrong number of arguments"),
    E_OUT_OF_STATE: ("E_OUT_OF_STATE", "no session: send HELLO first (the board may have rebooted)"),
    E_UNAUTHORISED: ("E_UNAUTHORISED", "not authorised: the reply's second integer says why (docs/security.md)"),
    E_BUSY: ("E_BUSY", "board busy: resend the same sequence number later"),
    E_VERSION: ("E_VERSION", "protocol version not supported"),
}

# build kinds reported by HELLO
BUILD_PRODUCTION = 0
BUILD_SIM = 1
# kernel hash kinds reported by HELLO
HASH_NONE = 0
HASH_SOURCE = 1     # sha256 of firmware/kernel.py
HASH_MPY = 2        # sha256 of firmware/kernel.mpy (what runs on a board)
HASH_EMBEDDED = 3   # sha256 of firmware/kernel.py, embedded by the build (firmware.kernel_sha): file or frozen

HELLO_FIELDS = ("protocol_version", "firmware_version", "build_kind", "max_advance_min", "hash_kind")
# after the 8 integers of the kernel hash: who can authenticate, and the replay counters
# then what a flashing tool must know before it interrupts the board (hil/cli.py flash, keys provision)
HELLO_STATE_FIELDS = ("infusing",)
HELLO_AUTH_FIELDS = ("auth_roles", "counter_pharmacy", "counter_clinician", "counter_bench",
                     "auth_rejected", "auth_unlogged")
EVENTS_PER_REPLY = 8

# STATUS reply: these fields of Controller.status(), in this order (protocol version 2)
STATUS_FIELDS = (
    "mode", "now_min", "motor_ul_per_h", "cap_ng_per_day", "cap_full_ng_per_day",
    "cap_low_ng_per_day", "indication", "cycle", "phase", "cycle_run_min", "free_min",
    "bag_loaded", "bag_ng_per_day", "bag_ul_per_h", "bag_run_min", "bag_room_min", "bag_ng",
    "bag_ul", "day_ng", "cycle_ng", "course_ng", "course_ul", "alarm", "fault", "locked",
    "lock_reason", "reinit_needed", "need_premed", "need_supervision", "int_start_min",
    "int_reason", "rx_crs", "rx_icans", "rx_neuro", "rx_seizure", "rx_other", "decision_pending",
    "overdose_min", "step_run_min", "low_left_min", "hospitalization", "events", "bag_id", "last_bag_id",
    "start_status", "cycle_ask", "max_cycles", "weight_g", "bsa_cm2",
)
# ARCHIVE reply (after the status and the archive's seq): these kernel fields of an ended therapy
ARCHIVE_FIELDS = (
    "patient_id", "indication", "weight_g", "bsa_cm2", "cycle", "max_cycles", "phase", "cycle_run_min",
    "locked", "lock_reason", "seizures", "course_ng", "course_ul", "last_bag_id", "now_min",
)



def crc(data):
    return crc32(data) & 0xFFFFFFFF


def _put(out, b):
    if b == FLAG or b == ESC or b == CTRL_C:
        out.append(ESC)
        out.append(b ^ ESC_XOR)
    else:
        out.append(b)


def encode(out, ftype, seq, cmd, ints, role=0, counter=0, mac=None):
    """Append one frame to the bytearray `out`. `ints` are signed 32-bit values. With `mac`
    (message -> 32 bytes: HMAC-SHA256 under the role's key), the frame is signed as requests
    are (docs/security.md): `role`, `counter` and the MAC over VER..counter follow the ints."""
    n = len(ints) + (2 + MAC_INTS if mac is not None else 0)
    body = bytearray(HEADER_BYTES + 4 * n + CRC_BYTES)
    struct.pack_into("<BBHBB", body, 0, VERSION, ftype, seq & 0xFFFF, cmd, n)
    off = HEADER_BYTES
    for v in ints:
        struct.pack_into("<i", body, off, v)
        off += 4
    if mac is not None:
        struct.pack_into("<ii", body, off, role, counter)
        off += 8
        body[off:off + 4 * MAC_INTS] = mac(memoryview(body)[:off])
        off += 4 * MAC_INTS
    struct.pack_into("<I", body, off, crc(memoryview(body)[:off]))
    out.append(FLAG)
    for b in body:
        _put(out, b)
    out.append(FLAG)
    return out


# results of Decoder.push
NOTHING = 0
FRAME = 1       # a frame with a good CRC is in buf[:n]
BAD = 2         # a non-empty frame failed: `error` is E_MALFORMED or E_BAD_CRC


class Decoder:
    """Byte-at-a-time receiver; resynchronises on every 0x7E."""

    def __init__(self):
        self.buf = bytearray(MAX_BODY_BYTES)
        self.n = 0              # bytes of the frame being received
        self.length = 0         # bytes of the last good frame, valid in buf until the next push
        self.esc = False
        self.overflow = False
        self.error = 0
        self.frames = 0         # good frames seen
        self.bad = 0            # bad frames seen

    def reset(self):
        self.n = 0
        self.esc = False
        self.overflow = False

    def push(self, b):
        if b == FLAG:
            n = self.n
            broken = self.overflow or self.esc
            self.reset()
            if n == 0 and not broken:
                return NOTHING              # idle flag between frames
            if broken or n < MIN_BODY_BYTES:
                self.error = E_MALFORMED
            elif struct.unpack_from("<I", self.buf, n - CRC_BYTES)[0] != crc(memoryview(self.buf)[:n - CRC_BYTES]):
                self.error = E_BAD_CRC
            else:
                self.length = n
                self.frames += 1
                return FRAME
            self.bad += 1
            return BAD
        if self.overflow:
            return NOTHING                  # discard until the next flag
        if b == ESC:
            self.esc = True
            return NOTHING
        if self.esc:
            b ^= ESC_XOR
            self.esc = False
        if self.n >= MAX_BODY_BYTES:
            self.overflow = True
            return NOTHING
        self.buf[self.n] = b
        self.n += 1
        return NOTHING

    def header(self):
        """After FRAME: (version, type, seq, cmd, nints); nints is -1 if the length disagrees."""
        ver, ftype, seq, cmd, n = struct.unpack_from("<BBHBB", self.buf, 0)
        if HEADER_BYTES + 4 * n + CRC_BYTES != self.length:
            n = -1
        return ver, ftype, seq, cmd, n

    def ints(self, n):
        out = []
        for i in range(n):
            out.append(struct.unpack_from("<i", self.buf, HEADER_BYTES + 4 * i)[0])
        return out

    def frame_crc(self):
        return struct.unpack_from("<I", self.buf, self.length - CRC_BYTES)[0]
