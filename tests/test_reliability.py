"""Nothing lost, nobody in (hil/reliability.py): each campaign passes on the firmware, and each
catches the bug it is there for (the firmware as it was before the fix, planted back)."""
from __future__ import annotations

import pytest

from blinpump.firmware import journal
from blinpump.firmware import main as fw_main
from blinpump.firmware import pump as fw_pump
from blinpump.hil import reliability


def test_L2_4_crs_4_no_step_is_acknowledged_while_the_record_cannot_be_written() -> None:
    tried, failures = reliability.write_failures()
    assert tried == 3 * len(reliability.THERAPY) and failures == []


def test_a_journal_that_says_written_when_it_was_not_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    save = journal.Journal.save

    def blind(self: journal.Journal, state: object) -> bool:
        save(self, state)
        return True                     # the controller is told the write worked
    monkeypatch.setattr(journal.Journal, "save", blind)
    tried, failures = reliability.write_failures()
    assert any("answered 0" in f for f in failures), failures
    assert any("on the device after storage recovered" in f for f in failures), failures


def test_a_controller_that_keeps_an_unacknowledged_effect_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw_pump, "_copy_state", lambda src, dst: None)     # no undo
    tried, failures = reliability.write_failures()
    assert any("not acknowledged, yet it changed" in f and "seizures" in f for f in failures), failures


def test_L2_4_crs_4_a_flood_of_frames_without_a_key_never_loses_a_therapy_event() -> None:
    sent, failures = reliability.ring_flood(minutes=40, frames_per_min=20)
    assert sent == 800 and failures == []


def test_refusals_logged_in_the_therapy_ring_are_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    log = journal.Journal.log

    def one_ring(self: journal.Journal, time_min: int, code: int, a: int, b: int) -> bool:
        # the journal as it was: refusals in the therapy ring
        return bool(log(self, time_min, code + 100 if code == journal.EV_AUTH else code, a, b))
    monkeypatch.setattr(journal.Journal, "log", one_ring)
    sent, failures = reliability.ring_flood(minutes=40, frames_per_min=20)
    assert any("therapy event lost" in f for f in failures), failures


def test_L2_4_seizure_a_retry_after_another_host_spoke_runs_once() -> None:
    runs, failures = reliability.two_hosts(runs=25)
    assert runs == 25 and failures == []


def test_a_board_with_one_reply_cache_for_all_hosts_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw_main.Board, "_cache_slot", lambda self, ftype, n: 0)
    runs, failures = reliability.two_hosts(runs=25)
    assert any("re-sent after another host" in f for f in failures), failures


def test_events_report_the_gap_when_the_ring_has_wrapped() -> None:
    """Pump.events() never hides what the board no longer holds: `.lost` counts it."""
    from blinpump.hil.client import Pump
    from blinpump.hil.sim import BoardLink
    link = BoardLink()
    with Pump(link) as p:
        p.setup(4242, 1, 70000, 0)
        for _ in range(150):                       # alarm, silence: 3 therapy events a round
            p.inject_fault("occlusion", 0)
            p.ack_alarm(255)
        events = p.events(0)
        next_seq = link.sim.board.controller.journal.event_seq
        assert next_seq > journal.EVENT_SLOTS
        assert len(events) == journal.EVENT_SLOTS
        assert events.lost == next_seq - journal.EVENT_SLOTS > 0
        recent = p.events(next_seq - 5)
        assert len(recent) == 5 and recent.lost == 0
