"""Who may change therapy: HMAC-SHA256 authenticated requests, replay counters and roles.

DESIGN.md: "Commands that change therapy are accepted only from an authorised source".
docs/security.md is the reference: frame layout, roles, key provisioning.

An authenticated request (frame TYPE 5) carries, after the command's own arguments,
    role i32 | counter i32 | mac 8 x i32
where mac = HMAC-SHA256(key of that role, frame body from VER up to and including counter).
The board accepts it only if
  - a key is provisioned for the role (keys.bin on the board's flash; never over the link),
  - the MAC matches (compared in constant time),
  - the counter is above the last counter accepted for that role (no replay), and
  - the role is permitted to send that command.
Counters of commands that change state are written to their own power-safe record before the
command runs, so a frame cannot be replayed after a reboot either.

No allocation on the tick path: all of this runs per received frame only.
"""
import struct

from binascii import crc32

from . import journal

try:
    import hashlib
except ImportError:             # a port without hashlib cannot authenticate: fail closed
    hashlib = None  # type: ignore[assignment]

# roles (key ids)
ROLE_NONE = 0           # a plain, unauthenticated request
ROLE_PHARMACY = 1       # may order bags
ROLE_CLINICIAN = 2      # may set up the patient, start, stop, acknowledge, enter reactions
ROLE_BENCH = 3          # may read status (and drive a simulated board)
NROLES = 3
ROLE_NAMES = ("none", "pharmacy", "clinician", "bench")

# permissions
PERM_OPEN = 0           # anyone (HELLO)
PERM_READ = 1           # STATUS, EVENTS
PERM_ORDER = 2          # bag orders
PERM_CLINICAL = 4       # every other therapy command
PERM_SIM = 8            # simulation commands (only a simulation build has them)
ROLE_PERMS = (0, PERM_READ | PERM_ORDER, PERM_READ | PERM_CLINICAL, PERM_READ | PERM_SIM)

KEY_BYTES = 32
MAC_BYTES = 32
BLOCK_BYTES = 64        # SHA-256 block
TRAILER_INTS = 2 + MAC_BYTES // 4       # role, counter, mac
COUNTER_MAX = 2147483647

# reasons of a refusal: the second integer of an E_UNAUTHORISED reply and `a` of EV_AUTH
R_NOT_AUTHENTICATED = 1     # a plain request for a command that needs a role
R_NO_KEY = 2                # no key provisioned for that role (or no such role)
R_BAD_MAC = 3
R_REPLAY = 4                # counter not above the last one accepted
R_ROLE = 5                  # the role may not send this command
R_NO_COUNTERS = 6           # the counter record is corrupt: replay cannot be ruled out
REASONS = ("", "not authenticated", "no key for that role", "MAC does not match",
           "replayed counter", "role not permitted", "counter record corrupt")

# ---- key file (keys.bin): magic 'BK' | version u8 | n u8 | n x (role u8 | key 32) | crc32 u32
KEYS_MAGIC = b"BK"
KEYS_VERSION = 1
KEY_ENTRY_BYTES = 1 + KEY_BYTES

# ---- counter record: two slots, written alternately, like the journal's state slots
#      magic 'BC' | version u8 | nroles u8 | seq u32 | nroles x u32 | crc32 u32
COUNTERS_MAGIC = b"BC"
COUNTERS_VERSION = 1
SLOT_BYTES = 8 + 4 * NROLES + 4
TOTAL_BYTES = 2 * SLOT_BYTES

LOAD_FRESH = 0
LOAD_OK = 1
LOAD_CORRUPT = 2


def _crc(data):
    return crc32(data) & 0xFFFFFFFF


def encode_keys(keys):
    """keys: {role: 32-byte key} -> the bytes of keys.bin (for provisioning tools and tests)."""
    out = bytearray(KEYS_MAGIC)
    out.append(KEYS_VERSION)
    out.append(len(keys))
    for role in sorted(keys):
        key = keys[role]
        if role < 1 or role > NROLES or len(key) != KEY_BYTES:
            raise ValueError("key for role %d: %d bytes, need %d" % (role, len(key), KEY_BYTES))
        out.append(role)
        out.extend(key)
    out.extend(struct.pack("<I", _crc(out)))
    return bytes(out)


def decode_keys(data):
    """The bytes of keys.bin -> {role: key}; raises ValueError naming what is wrong."""
    if len(data) < 8 or data[0:2] != KEYS_MAGIC:
        raise ValueError("keys.bin: not a key file")
    if data[2] != KEYS_VERSION:
        raise ValueError("keys.bin: version %d not supported" % data[2])
    n = data[3]
    if n > NROLES or len(data) != 4 + n * KEY_ENTRY_BYTES + 4:
        raise ValueError("keys.bin: length does not match %d keys" % n)
    body = len(data) - 4
    if struct.unpack_from("<I", data, body)[0] != _crc(memoryview(data)[:body]):
        raise ValueError("keys.bin: CRC mismatch")
    keys = {}
    for i in range(n):
        off = 4 + i * KEY_ENTRY_BYTES
        role = data[off]
        if role < 1 or role > NROLES or role in keys:
            raise ValueError("keys.bin: bad role %d" % role)
        keys[role] = bytes(data[off + 1:off + 1 + KEY_BYTES])
    return keys


class Counters:
    """The last counter accepted per role, kept in RAM and, for commands that change
    state, on the device (two alternating CRC'd slots: a cut at any byte leaves old or new)."""

    def __init__(self, storage):
        if storage is not None and storage.size() < TOTAL_BYTES:
            raise ValueError("counter storage: %d bytes needed" % TOTAL_BYTES)
        self.storage = storage      # None: RAM only (a bench harness without a record)
        self.last = [0] * (NROLES + 1)
        self.seq = 0
        self.next_slot = 0
        self.trusted = True
        self._slot = bytearray(SLOT_BYTES)

    def _slot_seq(self, buf):
        if buf[0:2] != COUNTERS_MAGIC or buf[2] != COUNTERS_VERSION or buf[3] != NROLES:
            return -1
        if struct.unpack_from("<I", buf, SLOT_BYTES - 4)[0] != _crc(memoryview(buf)[:SLOT_BYTES - 4]):
            return -1
        return struct.unpack_from("<I", buf, 4)[0]

    def load(self):
        if self.storage is None:
            return LOAD_FRESH
        a = self.storage.read(0, SLOT_BYTES)
        b = self.storage.read(SLOT_BYTES, SLOT_BYTES)
        seq_a = self._slot_seq(a)
        seq_b = self._slot_seq(b)
        if seq_a < 0 and seq_b < 0:
            if journal.blank(a) and journal.blank(b):
                return LOAD_FRESH
            self.trusted = False    # never guess a counter: refuse until keys are re-provisioned
            return LOAD_CORRUPT
        best, self.seq, self.next_slot = (a, seq_a, 1) if seq_a >= seq_b else (b, seq_b, 0)
        for role in range(1, NROLES + 1):
            self.last[role] = struct.unpack_from("<I", best, 8 + 4 * (role - 1))[0]
        return LOAD_OK

    def save(self):
        """Write the counters to the older slot; True once on the device."""
        if self.storage is None:
            return True
        buf = self._slot
        self.seq += 1
        buf[0] = COUNTERS_MAGIC[0]
        buf[1] = COUNTERS_MAGIC[1]
        buf[2] = COUNTERS_VERSION
        buf[3] = NROLES
        struct.pack_into("<I", buf, 4, self.seq)
        for role in range(1, NROLES + 1):
            struct.pack_into("<I", buf, 8 + 4 * (role - 1), self.last[role])
        struct.pack_into("<I", buf, SLOT_BYTES - 4, _crc(memoryview(buf)[:SLOT_BYTES - 4]))
        ok = self.storage.write(self.next_slot * SLOT_BYTES, buf)
        if ok:
            self.next_slot = 1 - self.next_slot
        return ok


class Auth:
    """Checks authenticated requests for the board loop (firmware/main.py)."""

    def __init__(self, keys=None, counter_storage=None):
        self._inner = {}            # role -> key XOR ipad (64 bytes)
        self._outer = {}            # role -> key XOR opad
        self.counters = Counters(counter_storage)
        self.rejected = 0           # frames refused since boot
        if keys:
            for role in keys:
                self.add_key(role, keys[role])

    def add_key(self, role, key):
        if role < 1 or role > NROLES or len(key) != KEY_BYTES or hashlib is None:
            return False
        inner = bytearray(BLOCK_BYTES)
        outer = bytearray(BLOCK_BYTES)
        for i in range(BLOCK_BYTES):
            b = key[i] if i < KEY_BYTES else 0
            inner[i] = b ^ 0x36
            outer[i] = b ^ 0x5C
        self._inner[role] = bytes(inner)
        self._outer[role] = bytes(outer)
        return True

    def roles(self):
        """Bit mask of the roles that have a key (bit 0 = pharmacy)."""
        mask = 0
        for role in self._inner:
            mask |= 1 << (role - 1)
        return mask

    def load(self):
        return self.counters.load()

    def mac(self, role, message):
        """HMAC-SHA256 (RFC 2104) of `message` under the role's key."""
        h = hashlib.sha256(self._inner[role])
        h.update(message)
        inner = h.digest()
        h = hashlib.sha256(self._outer[role])
        h.update(inner)
        return h.digest()

    def verify(self, role, message, mac_view):
        """0 if the MAC holds under the role's key, else R_NO_KEY or R_BAD_MAC. `message` is
        the signed part of the frame body, `mac_view` its 32 MAC bytes."""
        if role < 1 or role > NROLES or role not in self._inner:
            return R_NO_KEY
        if not _same(self.mac(role, message), mac_view):
            return R_BAD_MAC
        return 0

    def admit(self, role, counter, need):
        """For a frame whose MAC holds: 0 if it may run a command needing `need`, else
        R_NO_COUNTERS, R_REPLAY or R_ROLE."""
        if not self.counters.trusted:
            return R_NO_COUNTERS
        if counter <= self.counters.last[role]:
            return R_REPLAY
        if ROLE_PERMS[role] & need != need:
            return R_ROLE
        return 0

    def accept(self, role, counter, durable):
        """Consume the counter; durable commands write it before they run. False: not written."""
        self.counters.last[role] = counter
        if durable:
            return self.counters.save()
        return True


def _same(a, b):
    """Constant-time comparison of two 32-byte strings: no early exit on the first difference."""
    if len(a) != len(b):
        return False
    diff = 0
    for i in range(len(a)):
        diff |= a[i] ^ b[i]
    return diff == 0
