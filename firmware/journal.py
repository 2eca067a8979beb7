"""Power-safe record of the kernel state and the event log.

Layout on the storage device (little-endian):
  slot A at 0, slot B at SLOT_BYTES: the whole kernel state, written alternately
     magic 'BJ' | version u8 | nfields u8 | seq u32 | nfields x i32 | crc32 u32
  event ring at 2*SLOT_BYTES: EVENT_SLOTS records of EVENT_BYTES
     seq u32 | time_min i32 | code i16 | pad u16 | a i32 | b i32 | crc32 u32
A write only ever touches the slot that does not hold the newest record, so a power cut
at any byte leaves the old record or the new one: never a mixture, never nothing. A slot
whose CRC fails is never trusted. CRC is CRC-32/ISO-HDLC (binascii.crc32, check value
0xCBF43926 for b"123456789").

All buffers are allocated once, at start-up; saving a state allocates nothing.
"""
import struct

from binascii import crc32

from . import kernel

MAGIC = b"BJ"
VERSION = 1
# Field order is the sorted field names of kernel.State: stable on CPython and MicroPython.
FIELDS = tuple(sorted(kernel.State().__dict__))
NFIELDS = len(FIELDS)
HEADER_BYTES = 8
SLOT_BYTES = HEADER_BYTES + 4 * NFIELDS + 4
EVENT_BYTES = 24
EVENT_SLOTS = 256
RING_OFFSET = 2 * SLOT_BYTES
TOTAL_BYTES = RING_OFFSET + EVENT_BYTES * EVENT_SLOTS

LOAD_FRESH = 0      # blank device: no record yet
LOAD_OK = 1         # a valid record was restored
LOAD_CORRUPT = 2    # data present but no slot passes its CRC: never trusted

# event codes
EV_BOOT = 1
EV_COMMAND = 2      # a = command id, b = status
EV_STOP = 3         # a = reason, b = interruption start minute
EV_RESUME = 4       # a = interruption length in minutes, b = reason it began
EV_BAG_END = 5
EV_BAG_EXPIRED = 6
EV_ALARM = 7        # a = alarm bits
EV_LOCK = 8         # a = reason
EV_CYCLE = 9        # a = cycle, b = phase
EV_CORRUPT = 10     # a = which part
EV_REINIT = 11      # a = interruption start
EV_FAULT = 12       # a = fault kind (board-defined)
EV_AUTH = 13        # a = reason (firmware/auth.py R_*), b = command id: a refused request


class Journal:
    def __init__(self, storage):
        if storage.size() < TOTAL_BYTES:
            raise ValueError("storage: %d bytes needed" % TOTAL_BYTES)
        self.storage = storage
        self.seq = 0                 # seq of the newest valid state slot
        self.next_slot = 0
        self.event_seq = 0           # seq the next event will get
        self.events_lost = 0         # records that failed their CRC at boot
        self._slot = bytearray(SLOT_BYTES)
        self._event = bytearray(EVENT_BYTES)

    # ---- state slots ----
    def _slot_seq(self, buf):
        """The slot's sequence number if it is valid, else -1."""
        if buf[0:2] != MAGIC or buf[2] != VERSION or buf[3] != NFIELDS:
            return -1
        body = SLOT_BYTES - 4
        if struct.unpack_from("<I", buf, body)[0] != crc32(memoryview(buf)[:body]) & 0xFFFFFFFF:
            return -1
        return struct.unpack_from("<I", buf, 4)[0]

    def load(self, state):
        """Restore the newest valid slot into `state`; returns LOAD_*."""
        a = bytearray(self.storage.read(0, SLOT_BYTES))
        b = bytearray(self.storage.read(SLOT_BYTES, SLOT_BYTES))
        seq_a = self._slot_seq(a)
        seq_b = self._slot_seq(b)
        self._scan_events()
        if seq_a < 0 and seq_b < 0:
            if blank(a) and blank(b):
                return LOAD_FRESH
            return LOAD_CORRUPT
        best, self.seq, self.next_slot = (a, seq_a, 1) if seq_a >= seq_b else (b, seq_b, 0)
        for i in range(NFIELDS):
            setattr(state, FIELDS[i], struct.unpack_from("<i", best, HEADER_BYTES + 4 * i)[0])
        return LOAD_OK

    def save(self, state):
        """Write the state to the older slot. Returns True once it is on the device."""
        buf = self._slot
        self.seq += 1
        buf[0] = MAGIC[0]
        buf[1] = MAGIC[1]
        buf[2] = VERSION
        buf[3] = NFIELDS
        struct.pack_into("<I", buf, 4, self.seq)
        for i in range(NFIELDS):
            struct.pack_into("<i", buf, HEADER_BYTES + 4 * i, getattr(state, FIELDS[i]))
        body = SLOT_BYTES - 4
        struct.pack_into("<I", buf, body, crc32(memoryview(buf)[:body]) & 0xFFFFFFFF)
        ok = self.storage.write(self.next_slot * SLOT_BYTES, buf)
        if ok:
            self.next_slot = 1 - self.next_slot
        return ok

    # ---- event ring ----
    def _scan_events(self):
        """Find the next event seq; count records that fail their CRC (bounded: one pass)."""
        newest = -1
        self.events_lost = 0
        for i in range(EVENT_SLOTS):
            rec = self.storage.read(RING_OFFSET + i * EVENT_BYTES, EVENT_BYTES)
            if blank(rec):
                continue
            seq = _event_seq(rec)
            if seq < 0:
                self.events_lost += 1
            elif seq > newest:
                newest = seq
        self.event_seq = newest + 1

    def log(self, time_min, code, a, b):
        buf = self._event
        seq = self.event_seq
        struct.pack_into("<IihHii", buf, 0, seq, time_min, code, 0, a, b)
        struct.pack_into("<I", buf, 20, crc32(memoryview(buf)[:20]) & 0xFFFFFFFF)
        ok = self.storage.write(RING_OFFSET + (seq % EVENT_SLOTS) * EVENT_BYTES, buf)
        if ok:
            self.event_seq = seq + 1
        return ok

    def events(self, since_seq=0):
        """Valid events with seq >= since_seq, oldest first: (seq, time_min, code, a, b)."""
        out = []
        for i in range(EVENT_SLOTS):
            rec = self.storage.read(RING_OFFSET + i * EVENT_BYTES, EVENT_BYTES)
            seq = _event_seq(rec)
            if seq >= 0 and seq >= since_seq:      # -1: a blank or corrupt record
                fields = struct.unpack_from("<IihHii", rec, 0)
                out.append((fields[0], fields[1], fields[2], fields[4], fields[5]))
        out.sort()
        return out


def _event_seq(rec):
    if blank(rec):
        return -1
    if struct.unpack_from("<I", rec, 20)[0] != crc32(memoryview(rec)[:20]) & 0xFFFFFFFF:
        return -1
    return struct.unpack_from("<I", rec, 0)[0]


def blank(buf):
    """Erased flash reads 0xFF; a new file reads 0x00."""
    first = buf[0]
    if first != 0 and first != 0xFF:
        return False
    for x in buf:
        if x != first:
            return False
    return True
