"""Nothing lost, nobody in: campaigns behind the reliability figures (bench/hardening_reliability.py).

Each function runs the CPython simulated board in this process (firmware/simboard.py, the same
modules a board runs) and returns (tried, failures) with the failures described:

- write_failures: every step of a therapy (set-up, bag, acknowledgements, start, minutes, stop,
  a seizure, reactions up to a grade 4 CRS lock-out) is run with the record's storage failing,
  then for 0, 1 or 30 more minutes of the board loop. A step that answers anything but E_FAULT
  while its state is not on the device is a failure ("acknowledged"); so is a step whose effect
  stays in RAM although it was not acknowledged (a seizure counted, L2.4-seizure), a motor that
  runs while the record cannot be written, or a state in RAM that is not on the device once
  storage works again.
- ring_flood: a running pump with therapy events (a lock-out among them) gets floods of frames
  without a key, minute after minute; a therapy event that can no longer be read is lost.
- two_hosts: a clinician host and a pharmacy/bench host on one board. The clinician's request
  loses its reply, the other host sends a request, the clinician re-sends: the command must run
  exactly once and the re-send get its reply (L2.4-seizure: a seizure entered twice would lock).
"""
from __future__ import annotations

import random
from typing import Any

from blinpump.firmware import journal, simboard, simhal
from blinpump.firmware import auth as fw_auth
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.firmware import pump as fw_pump
from blinpump.hil.client import T_REQUEST, encode_frame
from blinpump.hil.unauthorised import Host

PID = 4242


# the steps of one therapy, each a controller command (kernel arguments)
THERAPY: tuple[tuple[str, int, list[int]], ...] = (
    ("set-up", fw_pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]),
    ("bag", fw_pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0]),
    ("premedication", fw_pump.CMD_ACK, [k.ACK_PREMED]),
    ("supervision", fw_pump.CMD_ACK, [k.ACK_SUPERVISION]),
    ("start", fw_pump.CMD_START, []),
    ("stop", fw_pump.CMD_STOP, [k.STOP_CLINICIAN]),
    ("silence alarms", fw_pump.CMD_ACK_ALARM, [255]),
    ("restart", fw_pump.CMD_START, []),
    ("seizure grade 2 (L2.4-seizure)", fw_pump.CMD_REACTION, [k.RX_SEIZURE, 2, 1]),
    ("CRS grade 3 (L2.4-restart-9)", fw_pump.CMD_REACTION, [k.RX_CRS, 3, 1]),
    ("CRS grade 4 (L2.4-crs-4)", fw_pump.CMD_REACTION, [k.RX_CRS, 4, 1]),
)


# what a command that was not acknowledged must not have changed
UNDONE_FIELDS = ("patient_id", "bag_id", "bag_loaded", "premed_acked", "supervision_acked", "seizures",
                 "rx_crs", "rx_icans", "rx_neuro", "rx_seizure", "rx_other", "locked", "decision_pending", "cycle_run_min", "course_ng")


def _controller(storage: simhal.MemStorage) -> fw_pump.Controller:
    return fw_pump.Controller(storage, simhal.SimClock(), simhal.SimMotor())


def write_failures(outages_min: tuple[int, ...] = (0, 1, 30)) -> tuple[int, list[str]]:
    """Each step of THERAPY with the storage failing at it and for `outage` more minutes of the
    board loop; then storage works again. (tried, failures)."""
    tried = 0
    failures: list[str] = []
    for i, (name, cid, args) in enumerate(THERAPY):
        for outage in outages_min:
            tried += 1
            failures.extend(_write_failure(i, name, cid, args, outage))
    return tried, failures


def _write_failure(i: int, name: str, cid: int, args: list[int], outage_min: int) -> list[str]:
    failures: list[str] = []
    storage = simhal.MemStorage(journal.TOTAL_BYTES)   # .fail: writes fail
    c = _controller(storage)
    c.boot()
    for _, cid0, args0 in THERAPY[:i]:
        c.command(cid0, list(args0))
        c.clock.advance(60000)
        c.poll()
    storage.fail = True
    before = dict(vars(c.s))
    status = c.command(cid, list(args))
    if status != k.E_FAULT:
        failures.append("%s answered %d while the record could not be written" % (name, status))
    kept = [f for f in UNDONE_FIELDS if getattr(c.s, f) != before[f]]
    if kept:
        failures.append("%s was not acknowledged, yet it changed %s" % (name, ", ".join(kept)))
    for _ in range(outage_min + 1):
        if c.motor.ul_per_h:
            failures.append("%s: the motor runs while the record cannot be written" % name)
            break
        c.clock.advance(60000)
        c.poll()
    ram = dict(vars(c.s))
    storage.fail = False
    c.clock.advance(1000)
    c.poll()                                    # storage works again: written now
    again = _controller(storage)
    if again.boot(0) != journal.LOAD_OK:
        failures.append("%s: no record after storage recovered" % name)
        return failures
    for field_ in ("locked", "fault", "rx_crs", "bag_loaded", "patient_id"):
        if getattr(again.s, field_) != ram[field_]:
            failures.append("%s (storage failing %d min): %s %s in RAM, %s on the device after storage "
                            "recovered" % (name, outage_min, field_, ram[field_], getattr(again.s, field_)))
    return failures


def _session(sim: Any) -> None:
    sim.board.feed(encode_frame(T_REQUEST, 1, P.CMD_HELLO, [P.VERSION]))


def ring_flood(minutes: int = 60, frames_per_min: int = 40) -> tuple[int, list[str]]:
    """(frames sent, failures): therapy events lost to a flood of frames without a key."""
    sim = simboard.make_board()
    sim.board._take()
    _session(sim)
    clinic = Host(sim, (fw_auth.ROLE_PHARMACY, fw_auth.ROLE_CLINICIAN, fw_auth.ROLE_BENCH))
    for cid, args in ((fw_pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0]), (fw_pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0]),
                      (fw_pump.CMD_ACK, [k.ACK_PREMED]), (fw_pump.CMD_ACK, [k.ACK_SUPERVISION]),
                      (fw_pump.CMD_START, []), (fw_pump.CMD_REACTION, [k.RX_CRS, 4, 1])):
        clinic.call(cid, args)
    before = list(sim.board.controller.journal.events(0))
    locks = [ev for ev in before if ev[2] == journal.EV_LOCK]
    sent = 0
    seq = 100
    for _ in range(minutes):
        for i in range(frames_per_min):
            seq = seq % 0xFFFF + 1
            sim.board.feed(encode_frame(T_REQUEST, seq, fw_pump.CMD_START, []))
            sent += 1
        clinic.call(simboard.CMD_ADVANCE, [1])
    after = set(sim.board.controller.journal.events(0))
    failures = ["therapy event lost: %s" % (ev,) for ev in before if ev not in after]
    if not locks:
        failures.append("no lock-out event to protect (L2.4-crs-4)")
    return sent, failures


# the clinician's commands of a two-host run, each sent once with its reply lost
CLINICIAN_COMMANDS: tuple[tuple[int, list[int]], ...] = (
    (fw_pump.CMD_STOP, [k.STOP_CLINICIAN]), (fw_pump.CMD_ACK, [k.ACK_PREMED]),
    (fw_pump.CMD_ACK, [k.ACK_SUPERVISION]), (fw_pump.CMD_START, []),
    (fw_pump.CMD_REACTION, [k.RX_SEIZURE, 2, 1]),     # twice would lock (L2.4-seizure)
)


def two_hosts(runs: int = 50, seed: int = 1) -> tuple[int, list[str]]:
    """(runs, failures): a clinician's re-sent request after another host spoke in between."""
    rng = random.Random(seed)
    failures: list[str] = []
    for run in range(runs):
        sim = simboard.make_board()
        sim.board._take()
        _session(sim)
        clinic = Host(sim, (fw_auth.ROLE_CLINICIAN,))
        other = Host(sim, (fw_auth.ROLE_PHARMACY, fw_auth.ROLE_BENCH))
        clinic.call(fw_pump.CMD_SETUP, [PID, k.IND_MRD, 70000, 0, 0])
        other.call(fw_pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0])
        for cid, args in ((fw_pump.CMD_ACK, [k.ACK_PREMED]), (fw_pump.CMD_ACK, [k.ACK_SUPERVISION]),
                          (fw_pump.CMD_START, [])):
            clinic.call(cid, args)
        cid, args = CLINICIAN_COMMANDS[run % len(CLINICIAN_COMMANDS)]
        data = clinic.frame(cid, list(args))
        before = _commands_of(sim, cid)
        first = clinic.send(data)               # ... and its reply is lost on the line
        if rng.random() < 0.5:
            other.call(P.CMD_STATUS, [])
        else:
            other.call(fw_pump.CMD_BAG, [PID, 1, 56000, 240000, 5000, 48, 0, 0, 0])   # the loaded bag again
        again = clinic.send(data)               # the clinician's host re-sends the same frame
        if again != first:
            failures.append("run %d: %s re-sent after another host: reply %s, first %s"
                            % (run, fw_pump.COMMANDS[cid][0], again, first))
        ran = _commands_of(sim, cid) - before
        if ran != 1:
            failures.append("run %d: %s ran %d times" % (run, fw_pump.COMMANDS[cid][0], ran))
        if sim.board.controller.s.locked:
            failures.append("run %d: locked after one seizure (L2.4-seizure)" % run)
    return runs, failures


def _commands_of(sim: Any, cid: int) -> int:
    """EV_COMMAND records of command `cid` in the journal: each is one run of it."""
    return sum(1 for ev in sim.board.controller.journal.events(0) if ev[2] == journal.EV_COMMAND and ev[3] == cid)
