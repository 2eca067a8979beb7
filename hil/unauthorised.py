"""A campaign of unauthorised frames against a simulated pump (docs/security.md).

A simulated board is given a running infusion by an authorised host. Then the campaign sends
frames that must all be refused, of these kinds:
  plain      a therapy, read or simulation command as a plain request (TYPE 1)
  wrong_key  signed with a key the board does not have
  bad_mac    correctly signed, then one signed byte changed and the CRC fixed up
  no_key     a role id with no key (0, 4..255, negative)
  wrong_role signed with a real key whose role may not send the command (pharmacy STOP, bench BAG)
  replay     an earlier frame that the board accepted, sent again (after newer ones)
  old_counter  correctly signed by the right role with a counter already used
After every frame it compares the kernel state and the motor rate with what they were before
the frame: any difference, or any reply other than E_UNAUTHORISED, counts as an unauthorised
change. Between frames the authorised host lets time pass and sends real commands, so the
campaign runs against a pump whose state moves (and whose counters rise).
"""
from __future__ import annotations

import random
import struct
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.firmware import pump as fw_pump
from blinpump.firmware import simboard, simhal
from blinpump.hil import auth as host_auth
from blinpump.hil.client import T_AUTH, T_AUTH_REPLY, T_REPLY, T_REQUEST, Frame, FrameReader, encode_frame, encode_signed

KINDS = ("plain", "wrong_key", "bad_mac", "no_key", "wrong_role", "replay", "old_counter")
PROVEN_KINDS = ("wrong_role", "replay", "old_counter")     # signed with the role's own key
PID = 4242
# commands an attacker would like to send, with plausible arguments
TARGETS: list[tuple[int, list[int]]] = [
    (fw_pump.CMD_STOP, [k.STOP_CLINICIAN]), (fw_pump.CMD_START, []), (fw_pump.CMD_REACTION, [k.RX_CRS, 4, 1]),
    (fw_pump.CMD_BAG, [PID, 10**9, 196000, 100800, 600, 168, 1, 0, 0]), (fw_pump.CMD_SETUP, [PID, k.IND_RR, 70000, 0, 0]),
    (fw_pump.CMD_OVERDOSE, []), (fw_pump.CMD_ACK, [k.ACK_PREMED]), (fw_pump.CMD_CLEAR_FAULT, []),
    (fw_pump.CMD_REMOVE_BAG, []), (fw_pump.CMD_DECIDE, [1]), (P.CMD_STATUS, []),
    (simboard.CMD_ADVANCE, [600]), (simboard.CMD_FAULT, [simboard.FAULT_POWER_CUT, -1]), (simboard.CMD_RESET, []),
]
# a role that may NOT send the command (docs/security.md, "Roles")
_FORBIDDEN_ROLE = {fw_pump.CMD_BAG: fw_auth.ROLE_CLINICIAN, simboard.CMD_ADVANCE: fw_auth.ROLE_CLINICIAN,
                   simboard.CMD_FAULT: fw_auth.ROLE_PHARMACY, simboard.CMD_RESET: fw_auth.ROLE_CLINICIAN}


@dataclass
class Result:
    tried: int = 0
    changes: int = 0                    # frames after which state or motor differed, or that got OK
    by_kind: Counter[str] = field(default_factory=Counter)
    reasons: Counter[int] = field(default_factory=Counter)     # E_UNAUTHORISED reasons seen
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0


class Host:
    """The authorised host, talking to the board in-process (Board.feed)."""

    def __init__(self, sim: Any, roles: tuple[int, ...] | None = None) -> None:
        self.sim = sim
        keys = host_auth.sim_keys()
        self.keys = {r: keys[r] for r in (roles or tuple(keys))}   # the roles this host holds
        # last counter used, per role: continues above the board's (several hosts, reboots)
        self.counters = {role: int(sim.board.auth.counters.last[role]) for role in self.keys}
        self.seq = 1
        self.accepted: list[bytes] = []         # frames the board accepted, for replays
        self.cached: dict[int, bytes] = {}      # per reply-cache slot (claimed role, 0 plain): last frame

    def frame(self, cmd: int, args: list[int], role: int = -1, key: bytes | None = None,
              counter: int | None = None) -> bytes:
        self.seq = self.seq % 0xFFFF + 1
        role = host_auth.role_for(cmd, self.keys) if role < 0 else role
        if counter is None:
            self.counters[role] += 1
            counter = self.counters[role]
        signing_key = key if key is not None else self.keys[role]
        return encode_signed(signing_key, self.seq, cmd, args, role, counter)

    def next_bag_id(self) -> int:
        """A new bag identity (the pharmacy's numbering increases per patient)."""
        return int(self.sim.board.controller.s.last_bag_id) + 1

    def fresh(self) -> int:
        """A counter above every role's: only the check under test can refuse the frame."""
        return max(self.counters.values()) + 1000

    def send(self, data: bytes, proven: bool = False) -> list[int]:
        """Send a frame; `proven`: its MAC holds for the role it claims, so when the board
        accepts it (its counter consumed: a status below 100) the reply is cached in that
        role's slot; every other reply goes to slot 0 (docs/protocol.md, "Delivery")."""
        replies = [f for f in FrameReader().feed(self.sim.board.feed(data))
                   if isinstance(f, Frame) and f.ftype in (T_REPLY, T_AUTH_REPLY)]
        ints: list[int] = []
        if replies:
            last = replies[-1]      # a signed reply's trailer (role, counter, MAC) is not its answer
            ints = list(last.ints[:-fw_auth.TRAILER_INTS] if last.ftype == T_AUTH_REPLY else last.ints)
        for f in FrameReader().feed(data):
            if isinstance(f, Frame):
                role = f.ints[len(f.ints) - fw_auth.TRAILER_INTS] if f.ftype == T_AUTH else 0
                self.cached[role if proven and ints and ints[0] < 100 else 0] = data
        return ints

    def call(self, cmd: int, args: list[int]) -> int:
        data = self.frame(cmd, args)
        ints = self.send(data, proven=True)
        if ints and ints[0] < 100:
            self.accepted.append(data)
        return ints[0] if ints else -1


def _running(host: Host) -> None:
    assert host.send(encode_frame(T_REQUEST, 1, P.CMD_HELLO, [P.VERSION]))[0] == k.OK
    assert host.call(fw_pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]) == k.OK
    assert host.call(fw_pump.CMD_BAG, [PID, host.next_bag_id(), 196000, 100800, 600, 168, 1, 0, 0]) == k.OK
    host.call(fw_pump.CMD_ACK, [k.ACK_PREMED])
    host.call(fw_pump.CMD_ACK, [k.ACK_SUPERVISION])
    assert host.call(fw_pump.CMD_START, []) == k.OK


def _snapshot(sim: Any) -> tuple[tuple[Any, ...], int]:
    s = sim.board.controller.s
    return tuple(sorted(s.__dict__.items())), sim.motor.ul_per_h


def _tamper(data: bytes, rng: random.Random) -> bytes:
    """Change one signed byte of an authenticated frame (SEQ, an argument, ROLE or COUNTER) and
    fix up its CRC: only the MAC can tell. (VER, TYPE, CMD and N are left alone: changing them
    is refused earlier, as another error.)"""
    body = bytearray(_body(data))
    signed = len(body) - 4 - fw_auth.MAC_BYTES
    i = rng.choice([2, 3] + list(range(P.HEADER_BYTES, signed)))
    body[i] ^= rng.randrange(1, 256)
    struct.pack_into("<I", body, len(body) - 4, P.crc(bytes(body[:-4])))
    return _stuff(bytes(body))


def _body(data: bytes) -> bytes:
    dec = P.Decoder()
    for b in data:
        dec.push(b)
    return bytes(dec.buf[:dec.length])


def _stuff(body: bytes) -> bytes:
    out = bytearray([P.FLAG])
    for b in body:
        P._put(out, b)
    out.append(P.FLAG)
    return bytes(out)


def _attack(kind: str, host: Host, rng: random.Random) -> bytes:
    cmd, args = rng.choice(TARGETS)
    if kind == "plain":
        host.seq = host.seq % 0xFFFF + 1
        return encode_frame(T_REQUEST, host.seq, cmd, args)
    if kind == "wrong_key":
        return host.frame(cmd, args, key=rng.randbytes(32), counter=host.fresh())
    if kind == "bad_mac":
        return _tamper(host.frame(cmd, args, counter=host.fresh()), rng)
    if kind == "no_key":
        role = rng.choice([0, 4, 5, 255, -1, 2**31 - 1])
        return host.frame(cmd, args, role=role, key=rng.randbytes(32), counter=host.fresh())
    if kind == "wrong_role":
        role = _FORBIDDEN_ROLE.get(cmd, fw_auth.ROLE_BENCH if cmd != P.CMD_STATUS else -1)
        if role < 0:
            cmd, args, role = fw_pump.CMD_STOP, [k.STOP_CLINICIAN], fw_auth.ROLE_PHARMACY
        return host.frame(cmd, args, role=role, counter=host.fresh())
    if kind == "replay":
        # not one that is the last frame answered for its role: that is a retry, answered from the
        # role's reply cache without running anything (docs/protocol.md, "Retries")
        return rng.choice([f for f in host.accepted if f not in host.cached.values()])
    # old_counter: right role, right key, a counter the board has already accepted for that role
    role = host_auth.role_for(cmd, host.keys)
    return host.frame(cmd, args, counter=rng.randint(1, host.counters[role]))


def _housekeeping(host: Host, rng: random.Random) -> None:
    """What the authorised side does between attacks: time passes, a stop and a restart."""
    host.call(simboard.CMD_ADVANCE, [rng.randint(1, 30)])
    if rng.random() < 0.1:
        host.call(fw_pump.CMD_STOP, [k.STOP_CLINICIAN])
        host.call(fw_pump.CMD_START, [])
    if host.sim.board.controller.s.bag_loaded == 0:
        host.call(fw_pump.CMD_BAG, [PID, host.next_bag_id(), 196000, 100800, 600, 168, 1, 0, 0])
        host.call(fw_pump.CMD_ACK, [k.ACK_PREMED])
        host.call(fw_pump.CMD_ACK, [k.ACK_SUPERVISION])
        host.call(fw_pump.CMD_START, [])


def run(frames: int = 10000, seed: int = 1, board: Any = None) -> Result:
    """Send `frames` unauthorised frames (kinds in turn) to a running simulated pump."""
    rng = random.Random(seed)
    sim = board if board is not None else simboard.make_board()
    sim.board._take()
    host = Host(sim)
    _running(host)
    result = Result()
    t0 = time.perf_counter()
    for i in range(frames):
        if i % 16 == 0:
            _housekeeping(host, rng)
        kind = KINDS[i % len(KINDS)]
        data = _attack(kind, host, rng)
        before = _snapshot(sim)
        ints = host.send(data, proven=kind in PROVEN_KINDS)
        result.tried += 1
        result.by_kind[kind] += 1
        if ints and ints[0] == P.E_UNAUTHORISED and len(ints) == 2:
            result.reasons[ints[1]] += 1
        if _snapshot(sim) != before or not ints or ints[0] != P.E_UNAUTHORISED:
            result.changes += 1
            if len(result.failures) < 20:
                result.failures.append("%s frame %s -> %s" % (kind, data.hex(), ints))
    result.seconds = time.perf_counter() - t0
    return result


def reprovision_replays(frames: int = 200, seed: int = 1, erase_counters: bool = False) -> tuple[int, int]:
    """(replays tried, replays accepted) after the same keys are provisioned again.

    A host's accepted frames (stops, starts, acknowledgements, reactions, bag orders) are recorded;
    then the board gets its keys again the way `blinpump keys provision` now does it (keys.bin
    replaced, the replay counters kept: auth.bin untouched) and reboots, and every recorded frame
    is sent again in a new session. `erase_counters` does what provisioning did before (auth.bin
    erased), which lets recorded frames in: the check can fail."""
    rng = random.Random(seed)
    sim = simboard.make_board()
    sim.board._take()
    host = Host(sim)
    _running(host)
    recorded = list(host.accepted)
    while len(recorded) < frames:
        host.call(fw_pump.CMD_STOP, [k.STOP_CLINICIAN])
        host.call(fw_pump.CMD_START, [])
        host.call(simboard.CMD_ADVANCE, [rng.randint(1, 5)])
        recorded = list(host.accepted)
    recorded = recorded[:frames]
    if erase_counters:
        sim.counter_storage = simhal.MemStorage(fw_auth.TOTAL_BYTES)
    sim.power_cut(0)                            # reset the board to load the keys
    sim.board._take()
    accepted = 0
    for data in recorded:
        host.send(encode_frame(T_REQUEST, host.seq % 0xFFFF + 1, P.CMD_HELLO, [P.VERSION]))
        host.seq = host.seq % 0xFFFF + 1
        ints = host.send(data, proven=True)
        if ints and ints[0] < 100:
            accepted += 1
    return len(recorded), accepted
