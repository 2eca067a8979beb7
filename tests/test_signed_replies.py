"""docs/security.md, "Signed replies and events", over the link: the client trusts only what
the board signed for the request in flight. A forged "OK", a reply signed with another key, or
a real reply recorded for an earlier request is not taken for the answer (the re-sent frame
gets the board's own signed reply from its cache); a forged event is dropped, a re-sent one is
not verified."""
from __future__ import annotations

from typing import Callable

from blinpump.firmware import auth as fw_auth
from blinpump.firmware import journal
from blinpump.firmware import kernel as k
from blinpump.firmware import protocol as P
from blinpump.firmware import simboard
from blinpump.hil.client import (T_AUTH_EVENT, T_AUTH_REPLY, T_REPLY, Frame, FrameReader, Pump,
                                 encode_frame)
from blinpump.hil.sim import BoardLink

from pumps import PID, ready_patient
KEYS = simboard.sim_keys()


class Swapping(BoardLink):
    """Replaces the board's answer to the next request by what `swap(request, answer)` returns."""

    def __init__(self) -> None:
        self.swap: Callable[[Frame, list[Frame]], bytes] | None = None
        self.request: Frame | None = None
        self.sent: list[bytes] = []         # every request, as sent
        super().__init__()

    def to_board(self, data: bytes) -> bytes:
        (self.request,) = [f for f in FrameReader().feed(data) if isinstance(f, Frame)]
        self.sent.append(data)
        return data

    def to_host(self, data: bytes) -> bytes:
        if self.swap is None or self.request is None:
            return data
        swap, self.swap = self.swap, None
        return swap(self.request, [f for f in FrameReader().feed(data) if isinstance(f, Frame)])


def _frame(f: Frame) -> bytes:
    return encode_frame(f.ftype, f.seq, f.cmd, list(f.ints))


_patient = ready_patient


def test_L2_5_errors_a_forged_plain_ok_is_not_the_answer_the_signed_refusal_is():
    link = Swapping()
    with Pump(link) as p:
        assert p.setup(PID, k.IND_MRD, 70000, 0) == k.OK
        link.swap = lambda req, answer: encode_frame(T_REPLY, req.seq, req.cmd, [k.OK])
        assert p.start() == k.E_NO_BAG                    # not the forged OK: the re-send's real reply
        assert p.stats["unverified_replies"] == 1 and p.stats["resends"] == 1
        assert p.status()["mode"] == k.MODE_STOPPED


def test_L2_5_errors_a_forged_plain_refusal_of_an_applied_start_is_not_the_answer():
    """The signed OK is dropped and a plain "not authenticated" put in its place: a signed
    request's answer is never plain, so the client re-sends and gets the cached OK."""
    link = Swapping()
    with Pump(link) as p:
        _patient(p)
        link.swap = lambda req, answer: encode_frame(T_REPLY, req.seq, req.cmd, [P.E_UNAUTHORISED, 1])
        assert p.start() == k.OK
        assert p.stats["unverified_replies"] == 1 and p.status()["mode"] == k.MODE_RUNNING


def test_L2_5_errors_a_replayed_frame_cannot_evict_the_reply_a_retry_asks_for():
    """START's signed OK is dropped, and a recorded older clinician frame is fed to the board in
    between: its refusal (a replay) goes to the plain slot, so START's re-send still gets START's
    own OK from the clinician's slot, not a "replayed counter" for an applied command."""
    link = Swapping()
    with Pump(link) as p:
        _patient(p)
        old = link.sent[-1]                                 # the last clinician frame (an ACK)

        def drop_and_replay(req: Frame, answer: list[Frame]) -> bytes:
            link.sim.board.feed(old)                        # refused: replayed counter
            return b""
        link.swap = drop_and_replay
        assert p.start() == k.OK
        assert p.stats["resends"] == 1 and p.status()["mode"] == k.MODE_RUNNING
    refusals = link.sim.board.controller.journal.events(0, security=True)
    assert [(e[2], e[3]) for e in refusals] == [(journal.EV_AUTH, fw_auth.R_REPLAY)]


def test_a_wrong_key_file_is_a_link_error_that_says_so():
    """A host with the wrong clinician key gets only plain refusals (its MAC fails): never taken
    for the answer, the error says what the board answered and that it may not have applied."""
    from blinpump.hil.client import LinkError
    link = BoardLink()
    keys = dict(KEYS)
    keys[fw_auth.ROLE_CLINICIAN] = bytes(32)
    with Pump(link, keys=keys, retries=1) as p:
        try:
            p.stop()
        except LinkError as exc:
            assert "unsigned (E_UNAUTHORISED MAC does not match)" in str(exc) and "wrong key" in str(exc)
        else:
            raise AssertionError("a plain refusal was taken for the answer")


def test_a_reply_signed_with_another_roles_key_is_not_the_answer():
    link = Swapping()
    with Pump(link) as p:
        assert p.setup(PID, k.IND_MRD, 70000, 0) == k.OK

        def bench_signed(req: Frame, answer: list[Frame]) -> bytes:
            board = fw_auth.Auth(KEYS)
            role, counter = req.ints[-10], req.ints[-9]
            return bytes(P.encode(bytearray(), T_AUTH_REPLY, req.seq, req.cmd, [k.OK], role, counter,
                                  lambda m: board.mac(fw_auth.ROLE_BENCH, m)))
        link.swap = bench_signed
        assert p.start() == k.E_NO_BAG
        assert p.stats["unverified_replies"] == 1


def test_a_real_reply_recorded_for_an_earlier_request_does_not_answer_a_later_one():
    """Same SEQ (a host's SEQ wraps), same command, same role, a MAC that holds: only the counter
    tells the recorded refusal from the answer to the START in flight."""
    link = Swapping()
    with Pump(link) as p:
        assert p.setup(PID, k.IND_MRD, 70000, 0) == k.OK
        seq = p.seq + 1
        assert p.start() == k.E_NO_BAG
        (recorded,) = [f for f in FrameReader().feed(link.sim.board.cache_reply[fw_auth.ROLE_CLINICIAN])
                       if isinstance(f, Frame)]
        assert (recorded.ftype, recorded.seq, recorded.ints[0]) == (T_AUTH_REPLY, seq, k.E_NO_BAG)
        assert p.bag(PID, 1, 56000, 240000, 5000, 48, 0) == k.OK
        p.ack(k.ACK_PREMED)
        p.ack(k.ACK_SUPERVISION)
        p.seq = seq - 1                                    # the next request goes out with that SEQ
        link.swap = lambda req, answer: _frame(recorded)
        assert p.start() == k.OK
        assert p.stats["unverified_replies"] == 1
        assert p.status()["mode"] == k.MODE_RUNNING


def test_events_are_verified_forged_ones_dropped_re_sent_ones_not_verified():
    link = BoardLink()
    seen: list[dict[str, int]] = []
    with Pump(link, on_event=seen.append) as p:
        boot = [e for e in seen if e["code"] == journal.EV_BOOT]
        assert boot and boot[0]["verified"] == 0          # no command accepted yet: plain
        _patient(p)
        assert p.start() == k.OK
        seen.clear()
        assert p.stop() == k.OK
        stops = [e for e in seen if e["code"] == journal.EV_STOP]
        assert stops and all(e["verified"] == 1 for e in seen)
        # the STOP event again, as recorded, and a forged one signed with another role's key
        ev = stops[0]
        board = fw_auth.Auth(KEYS)
        again = P.encode(bytearray(), T_AUTH_EVENT, ev["seq"], journal.EV_STOP,
                         [ev["seq"], ev["time_min"], ev["a"], ev["b"]], fw_auth.ROLE_CLINICIAN, ev["seq"],
                         lambda m: board.mac(fw_auth.ROLE_CLINICIAN, m))
        forged = P.encode(bytearray(), T_AUTH_EVENT, ev["seq"] + 1, journal.EV_STOP,
                          [ev["seq"] + 1, ev["time_min"], k.STOP_CAP, ev["b"]], fw_auth.ROLE_CLINICIAN,
                          ev["seq"] + 1, lambda m: board.mac(fw_auth.ROLE_BENCH, m))
        seen.clear()
        p.stream.clear()
        link.rx += bytes(again) + bytes(forged)
        got = p.pump_events(0.05)
        # the board's own event again is kept, not as verified (a hint to read EVENTS); the forged
        # one is dropped
        assert [(e["seq"], e["verified"]) for e in got] == [(ev["seq"], 0)]
        assert p.stats["rejected_events"] == 1 and p.stats["unordered_events"] == 1


def test_after_a_reset_the_new_journals_events_are_verified_again():
    """RESET erases a simulated board's journal: its seqs begin again. The client sees that in a
    signed reply (STATUS `events`) and keeps verifying; it never takes them for replays."""
    link = BoardLink()
    seen: list[dict[str, int]] = []
    with Pump(link, on_event=seen.append) as p:
        _patient(p)
        assert p.start() == k.OK and p.stop() == k.OK
        assert p.reset() == k.OK
        p.status()
        seen.clear()
        _patient(p)
        assert p.start() == k.OK and p.stop() == k.OK
        assert [e for e in seen if e["code"] == journal.EV_STOP and e["verified"] == 1]
        assert p.stats["rejected_events"] == 0
