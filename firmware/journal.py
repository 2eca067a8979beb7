"""Power-safe record of the kernel state and the event log.

Layout on the storage device (little-endian):
  slot A at 0, slot B at SLOT_BYTES: the whole kernel state, written alternately
     magic 'BJ' | version u8 | nfields u8 | seq u32 | layout u32 | nfields x i32 | crc32 u32
  event ring at RING_OFFSET: EVENT_SLOTS records of EVENT_BYTES (therapy events)
     seq u32 | time_min i32 | code i16 | pad u16 | a i32 | b i32 | crc32 u32
  security ring at AUTH_RING_OFFSET: AUTH_SLOTS records of the same format, with their own
     seq: refused requests (EV_AUTH) only, so that frames from the line, however many, can
     never overwrite a therapy event
  archive at ARCHIVE_OFFSET: ARCHIVE_SLOTS state records (the slot format), one written at
     each END_THERAPY before the kernel clears the patient: the last ended therapies stay
     readable (ARCHIVE command), never erased by the next patient's set-up
A write only ever touches the slot that does not hold the newest record, so a power cut
at any byte leaves the old record or the new one: never a mixture, never nothing. A slot
whose CRC fails is never trusted. CRC is CRC-32/ISO-HDLC (binascii.crc32, check value
0xCBF43926 for b"123456789").

Format version: `layout` is the CRC-32 of the state's field names in record order. A record
written by a firmware with another state layout is never read as corrupt and never erased:
a layout this firmware knows (LAYOUTS: the landed layouts, oldest first) is migrated field by
field by name (a field new in this firmware takes its start-up value); an unknown one loads as
LOAD_INCOMPATIBLE and the controller refuses to run on it and keeps it untouched.

All buffers are allocated once, at start-up; saving a state allocates nothing.
"""
import struct

from binascii import crc32

from . import kernel

MAGIC = b"BJ"
VERSION = 2
# Field order is the sorted field names of kernel.State: stable on CPython and MicroPython.
FIELDS = tuple(sorted(kernel.State().__dict__))
NFIELDS = len(FIELDS)
HEADER_BYTES = 12
RECORD_BYTES = HEADER_BYTES + 4 * NFIELDS + 4       # the part of a slot a record uses
SLOT_BYTES = 512                # fixed, so a new state layout never moves the rings (<= 124 fields)
EVENT_BYTES = 24
EVENT_SLOTS = 256
AUTH_SLOTS = 32
RING_OFFSET = 2 * SLOT_BYTES
AUTH_RING_OFFSET = RING_OFFSET + EVENT_BYTES * EVENT_SLOTS
ARCHIVE_SLOTS = 4
ARCHIVE_OFFSET = AUTH_RING_OFFSET + EVENT_BYTES * AUTH_SLOTS
TOTAL_BYTES = ARCHIVE_OFFSET + SLOT_BYTES * ARCHIVE_SLOTS

LOAD_FRESH = 0          # blank device: no record yet
LOAD_OK = 1             # a valid record was restored (migrated, if it had an older layout)
LOAD_CORRUPT = 2        # data present but no slot passes its CRC: never trusted
LOAD_INCOMPATIBLE = 3   # a valid record of a state layout this firmware does not know: kept, not run

# Every state layout this firmware reads: (field names in record order,) oldest first. A new
# firmware that adds or removes kernel fields appends its layout here, keeping the old ones, so
# a board updated in the middle of a therapy migrates its record by field name.
# firmware 0.2.0: one reaction hold (rx_kind, rx_grade, rx_start_min, rx_at_low) instead of
# one per kind, and bags that ran at volume / duration instead of their labelled rate
LAYOUT_0_2 = (
    "acc_ng", "acc_ul", "alarm", "bag_duration_min", "bag_id", "bag_in_window", "bag_loaded", "bag_ng",
    "bag_ng_per_day", "bag_room_limit_min", "bag_room_min", "bag_run_min", "bag_seq", "bag_ul", "bag_ul_per_h",
    "bag_volume_ul", "booked_min", "bsa_cm2", "cap_full_ng_per_day", "cap_low_ng_per_day", "cap_ng_per_day",
    "course_ng", "course_ul", "cycle", "cycle_ng", "cycle_run_min", "day_cap_ng", "day_min", "day_ng",
    "decision_pending", "fault", "free_len_min", "free_min", "indication", "int_reason", "int_start_min",
    "int_unknown", "last_bag_id", "lock_reason", "locked", "low_left_min", "max_cycles", "mode",
    "motor_ul_per_h", "need_premed", "need_supervision", "now_min", "overdose_min", "patient_id", "phase",
    "premed_ack_min", "premed_acked", "reinit_needed", "run_ng_per_day", "rx_at_low", "rx_grade", "rx_kind",
    "rx_start_min", "seizures", "step_premed_done", "step_run_min", "supervision_acked", "weight_g")
LAYOUTS = (LAYOUT_0_2, FIELDS)
V1_HEADER_BYTES = 8             # record version 1 (firmware 0.1.0): no layout word, slots packed
V1_NFIELDS = 57                 # back to back; recognised, never migrated (LOAD_INCOMPATIBLE): its
V1_RECORD_BYTES = V1_HEADER_BYTES + 4 * V1_NFIELDS + 4      # event ring sits where ours does not


def layout_of(fields):
    """The layout word of a field list: CRC-32 of the names joined by commas."""
    return crc32(",".join(fields).encode()) & 0xFFFFFFFF


LAYOUT = layout_of(FIELDS)

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
EV_AUTH = 13        # a = reason (firmware/auth.py R_*), b = command id: a refused request (security ring)
EV_THERAPY_END = 14 # a = patient id, b = course_ng: END_THERAPY, after the record was archived
EV_REACTION = 15    # a = kind * 10 + grade, b = scale (kernel.SCALE_*): a reaction entered
EV_DECISION = 16    # a = which (pump.DECISION_*), b = the answer
EV_PATIENT = 17     # a = old weight_g, b = new weight_g (UPDATE_PATIENT)
EV_PATIENT_BSA = 18 # a = old bsa_cm2, b = new bsa_cm2 (UPDATE_PATIENT; 0: fixed dose)
EV_RESOLVED = 19    # a = kind, b = status (OK, or E_LOCKED: resolved too late)
EV_BAG_REFUSED = 20 # a = bag id: a loaded bag taken off by a new weight or BSA (L2-dose-28)
EV_MAINTENANCE = 21 # a = role: MAINTENANCE accepted; the board resets into maintenance (flashing)


class Journal:
    def __init__(self, storage):
        if storage.size() < TOTAL_BYTES:
            raise ValueError("storage: %d bytes needed" % TOTAL_BYTES)
        self.storage = storage
        self.seq = 0                 # seq of the newest valid state slot
        self.next_slot = 0
        self.event_seq = 0           # seq the next therapy event will get
        self.auth_seq = 0            # seq the next security event will get
        self.events_lost = 0         # records that failed their CRC at boot
        self.loaded_layout = 0       # layout word of the record found at boot (0: none)
        self._slot = bytearray(RECORD_BYTES)
        self._event = bytearray(EVENT_BYTES)

    # ---- state slots ----
    def _slot_info(self, buf):
        """(seq, layout index in LAYOUTS or -1) of a version-2 slot whose CRC holds, else None."""
        if buf[0:2] != MAGIC or buf[2] != VERSION:
            return None
        n = buf[3]
        body = HEADER_BYTES + 4 * n
        if body + 4 > len(buf):
            return None
        if struct.unpack_from("<I", buf, body)[0] != crc32(memoryview(buf)[:body]) & 0xFFFFFFFF:
            return None
        word = struct.unpack_from("<I", buf, 8)[0]
        layout = -1
        for i in range(len(LAYOUTS)):
            if len(LAYOUTS[i]) == n and layout_of(LAYOUTS[i]) == word:
                layout = i
        return struct.unpack_from("<I", buf, 4)[0], layout

    def _legacy(self):
        """True if a valid record of format version 1 is on the device: its slot A at 0, or its
        slot B right after it (version 1 packed two slots of V1_RECORD_BYTES back to back)."""
        for off in (0, V1_RECORD_BYTES):
            buf = self.storage.read(off, V1_RECORD_BYTES)
            body = V1_RECORD_BYTES - 4
            if (buf[0:2] == MAGIC and buf[2] == 1 and buf[3] == V1_NFIELDS and struct.unpack_from(
                    "<I", buf, body)[0] == crc32(memoryview(buf)[:body]) & 0xFFFFFFFF):
                return True
        return False

    def load(self, state):
        """Restore the newest valid slot into `state`; returns LOAD_*. A record of an older
        layout this firmware knows is migrated by field name; a record of an unknown layout
        or format version is LOAD_INCOMPATIBLE, and the controller never writes over it."""
        a = bytearray(self.storage.read(0, SLOT_BYTES))
        b = bytearray(self.storage.read(SLOT_BYTES, SLOT_BYTES))
        info_a = self._slot_info(a)
        info_b = self._slot_info(b)
        self._scan_events()
        self.loaded_layout = 0
        if info_a is None and info_b is None:
            if self._legacy():
                self.loaded_layout = -1
                return LOAD_INCOMPATIBLE
            if blank(a) and blank(b):
                return LOAD_FRESH
            return LOAD_CORRUPT
        if info_b is None or (info_a is not None and info_a[0] >= info_b[0]):
            best, info, self.next_slot = a, info_a, 1
        else:
            best, info, self.next_slot = b, info_b, 0
        self.seq = info[0]
        if info[1] < 0:
            self.loaded_layout = -1
            return LOAD_INCOMPATIBLE
        fields = LAYOUTS[info[1]]
        self.loaded_layout = layout_of(fields)
        for i in range(len(fields)):
            if fields[i] in FIELDS:     # a field this firmware no longer has is dropped
                setattr(state, fields[i], struct.unpack_from("<i", best, HEADER_BYTES + 4 * i)[0])
        if fields is LAYOUT_0_2:
            _migrate_0_2(state, best)
        if fields is not FIELDS and not kernel.invariant(state):
            self.loaded_layout = -1     # a migration that does not make a state this kernel can run
            return LOAD_INCOMPATIBLE
        return LOAD_OK

    def archive(self, state):
        """Keep `state` readable in the archive (the next of ARCHIVE_SLOTS, oldest overwritten
        first), before END_THERAPY clears it. True once it is on the device. The same therapy
        archived again (END_THERAPY retried after a failed write or a power cut) rewrites its
        own slot: one ended therapy is one archive."""
        n = self.archive_count()
        newest = kernel.State()
        if n > 0 and self.archived(0, newest, n) and _same_therapy(newest, state):
            n = n - 1
        self._fill(state, n + 1)
        return self.storage.write(ARCHIVE_OFFSET + (n % ARCHIVE_SLOTS) * SLOT_BYTES, self._slot)

    def archive_count(self):
        """How many therapies were archived on this device (the newest archive's seq)."""
        newest = 0
        for i in range(ARCHIVE_SLOTS):
            info = self._slot_info(bytearray(self.storage.read(ARCHIVE_OFFSET + i * SLOT_BYTES, SLOT_BYTES)))
            if info is not None and info[0] > newest:
                newest = info[0]
        return newest

    def archived(self, back, state, count=-1):
        """Load the archive `back` therapies ago (0: the newest) into `state`: True if it is
        there and readable (a record of this layout, CRC intact). `count` is archive_count()
        when the caller has it already (reading several archives scans the slots once)."""
        n = count if count >= 0 else self.archive_count()
        if back < 0 or back >= ARCHIVE_SLOTS or back >= n:
            return False
        buf = bytearray(self.storage.read(ARCHIVE_OFFSET + ((n - 1 - back) % ARCHIVE_SLOTS) * SLOT_BYTES,
                                          SLOT_BYTES))
        info = self._slot_info(buf)
        if info is None or info[1] < 0 or info[0] != n - back or LAYOUTS[info[1]] is not FIELDS:
            return False
        for i in range(NFIELDS):
            setattr(state, FIELDS[i], struct.unpack_from("<i", buf, HEADER_BYTES + 4 * i)[0])
        return True

    def _fill(self, state, seq):
        buf = self._slot            # RECORD_BYTES: the rest of the slot is never written
        buf[0] = MAGIC[0]
        buf[1] = MAGIC[1]
        buf[2] = VERSION
        buf[3] = NFIELDS
        struct.pack_into("<I", buf, 4, seq)
        struct.pack_into("<I", buf, 8, LAYOUT)
        for i in range(NFIELDS):
            struct.pack_into("<i", buf, HEADER_BYTES + 4 * i, getattr(state, FIELDS[i]))
        body = RECORD_BYTES - 4
        struct.pack_into("<I", buf, body, crc32(memoryview(buf)[:body]) & 0xFFFFFFFF)

    def save(self, state):
        """Write the state to the older slot. Returns True once it is on the device."""
        self.seq += 1
        self._fill(state, self.seq)
        ok = self.storage.write(self.next_slot * SLOT_BYTES, self._slot)
        if ok:
            self.next_slot = 1 - self.next_slot
        return ok

    # ---- event ring ----
    def _scan_ring(self, offset, slots):
        """The next seq of a ring, and the records in it that fail their CRC (one bounded pass)."""
        newest = -1
        lost = 0
        for i in range(slots):
            rec = self.storage.read(offset + i * EVENT_BYTES, EVENT_BYTES)
            if blank(rec):
                continue
            seq = _event_seq(rec)
            if seq < 0:
                lost += 1
            elif seq > newest:
                newest = seq
        return newest + 1, lost

    def _scan_events(self):
        self.event_seq, self.events_lost = self._scan_ring(RING_OFFSET, EVENT_SLOTS)
        self.auth_seq, lost = self._scan_ring(AUTH_RING_OFFSET, AUTH_SLOTS)
        self.events_lost += lost

    def log(self, time_min, code, a, b):
        """Append an event: EV_AUTH to the security ring, every other code to the therapy ring."""
        buf = self._event
        security = code == EV_AUTH
        seq = self.auth_seq if security else self.event_seq
        struct.pack_into("<IihHii", buf, 0, seq, time_min, code, 0, a, b)
        struct.pack_into("<I", buf, 20, crc32(memoryview(buf)[:20]) & 0xFFFFFFFF)
        if security:
            ok = self.storage.write(AUTH_RING_OFFSET + (seq % AUTH_SLOTS) * EVENT_BYTES, buf)
            if ok:
                self.auth_seq = seq + 1
        else:
            ok = self.storage.write(RING_OFFSET + (seq % EVENT_SLOTS) * EVENT_BYTES, buf)
            if ok:
                self.event_seq = seq + 1
        return ok

    def events(self, since_seq=0, security=False):
        """Valid events with seq >= since_seq, oldest first: (seq, time_min, code, a, b); the
        therapy ring, or with security=True the ring of refused requests."""
        offset, slots = (AUTH_RING_OFFSET, AUTH_SLOTS) if security else (RING_OFFSET, EVENT_SLOTS)
        out = []
        for i in range(slots):
            rec = self.storage.read(offset + i * EVENT_BYTES, EVENT_BYTES)
            seq = _event_seq(rec)
            if seq >= 0 and seq >= since_seq:      # -1: a blank or corrupt record
                fields = struct.unpack_from("<IihHii", rec, 0)
                out.append((fields[0], fields[1], fields[2], fields[4], fields[5]))
        out.sort()
        return out


def _same_therapy(a, b):
    """Two records of one therapy: same patient, same bags, same course given, same minute."""
    return (a.patient_id == b.patient_id and a.bag_seq == b.bag_seq and a.course_ng == b.course_ng
            and a.now_min == b.now_min)


def _migrate_0_2(state, buf):
    """A 0.2.0 record: its one reaction hold becomes the hold of its kind, with its onset (the
    clocks of Table 4 go on), and a loaded bag is taken off with the bag-expired alarm: it ran
    at volume / duration, not at the rate on its label (EXT-rates), so it is ordered again."""
    def old(name):
        return struct.unpack_from("<i", buf, HEADER_BYTES + 4 * LAYOUT_0_2.index(name))[0]
    kind, grade, onset = old("rx_kind"), old("rx_grade"), old("rx_start_min")
    if kind == kernel.RX_CRS:
        state.rx_crs = 3
    elif kind == kernel.RX_ICANS:
        state.rx_icans, state.rx_icans_onset_min, state.rx_icans_g3_min = grade, onset, onset
    elif kind == kernel.RX_NEURO:
        state.rx_neuro, state.rx_neuro_onset_min, state.rx_neuro_g3_min = 3, onset, onset
    elif kind == kernel.RX_SEIZURE:
        state.rx_seizure, state.rx_seizure_onset_min, state.rx_seizure_g3_min = 3, onset, onset
    elif kind == kernel.RX_OTHER:
        state.rx_other, state.rx_other_onset_min = grade, onset
    if state.decision_pending == 1 and state.rx_other != 4:
        state.rx_other, state.rx_other_onset_min = 4, onset     # 0.2.0 kept one hold: the decision's stays open
    if state.int_start_min >= 0 and (kind != kernel.RX_NONE or state.int_reason == kernel.STOP_REACTION):
        state.int_rx = 1
    if state.bag_loaded == 1:
        kernel._stop_motor(state, kernel.STOP_POWER)      # an interruption opens now, if it ran
        kernel._unload_bag(state)
        state.alarm = state.alarm | kernel.AL_BAG_EXPIRED


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
