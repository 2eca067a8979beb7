"""Clock and timing faults: random clock behaviour against the controller, with the oracle of
tests/mpy/clock_rig.py checked after every step; the watchdog; the verifier's clock properties.

Clock behaviour drawn: minutes of a good clock, parts of a minute, late ticks (1 to 5 min),
forward jumps (5 min + 1 ms to 3 weeks of real stall), backward jumps (1 ms to 3 weeks, any
real time), backward jitter, wrap-around of a 2**30 ms tick counter, reboots after a known or
an unknown outage. Therapy commands are interleaved: set-up, bags, acknowledgements, start,
stop, reactions, fault clearing. The oracle (L2-dose-28, L2.5-errors, L2-reinit-4h, L2-premed,
L2.6-bag-*): see tests/mpy/clock_rig.py.
"""
from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypo import examples

from blinpump.firmware import hal, journal, kernel as k, main, pump, simhal
from blinpump.verify.engine import PROVED, prove
from blinpump.verify.properties import by_id

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "mpy"))
from clock_rig import MS_PER_MIN, WRAP_PERIOD_MS, Rig, start_without_acks  # noqa: E402

KERNEL = REPO / "firmware" / "kernel.py"
WEEK_MS = 7 * 1440 * MS_PER_MIN
MAX_JUMP_MS = 3 * WEEK_MS
# a wrapping counter cannot tell a jump of `period` from none: the rig's jumps stay below the
# aliasing range (a board's watchdog keeps real stalls far below it, see test_watchdog_*)
MAX_WRAP_JUMP_MS = WRAP_PERIOD_MS - pump.MAX_GAP_MS - 1


# ---------------------------------------------------------------- the random campaign
def _action(wrap: bool) -> st.SearchStrategy[tuple[Any, ...]]:
    jump = st.integers(pump.MAX_GAP_MS + 1, MAX_WRAP_JUMP_MS if wrap else MAX_JUMP_MS)
    back = st.one_of(st.sampled_from([1, 1000, 59999]), st.integers(1, MAX_WRAP_JUMP_MS if wrap else MAX_JUMP_MS))
    return st.one_of(
        st.tuples(st.just("min"), st.one_of(st.sampled_from([1, 59, 60, 61, 179, 180, 239, 240, 241]),
                                            st.integers(1, 900))),
        st.tuples(st.just("sub"), st.integers(1, MS_PER_MIN - 1)),
        st.tuples(st.just("late"), st.one_of(st.just(pump.MAX_GAP_MS), st.integers(MS_PER_MIN + 1, pump.MAX_GAP_MS))),
        st.tuples(st.just("fwd"), st.one_of(st.just(pump.MAX_GAP_MS + 1), jump)),
        st.tuples(st.just("back"), back, st.one_of(st.just(0), st.integers(0, MAX_JUMP_MS))),
        st.tuples(st.just("jitter"), st.integers(1, 30), st.integers(1, 1000), st.integers(0, 2 * MS_PER_MIN)),
        st.tuples(st.just("reboot"), st.one_of(st.sampled_from([0, 1, 59999, 240 * MS_PER_MIN]),
                                               st.integers(0, MAX_JUMP_MS)),
                  st.booleans(), st.integers(0, WRAP_PERIOD_MS - 1)),
        st.tuples(st.just("therapy"), st.sampled_from([24, 48, 72, 96, 168])),
        st.tuples(st.just("bag"), st.sampled_from([24, 48, 72, 96, 168])),
        st.tuples(st.just("ack")),
        st.tuples(st.just("start")),
        st.tuples(st.just("stop"), st.integers(1, 11)),
        st.tuples(st.just("clear")),
        st.tuples(st.just("reaction"), st.sampled_from([k.RX_CRS, k.RX_ICANS, k.RX_OTHER]), st.integers(2, 3)),
        st.tuples(st.just("resolved")),
        st.tuples(st.just("setup"), st.sampled_from([k.IND_MRD, k.IND_RR, k.IND_CONS]),
                  st.sampled_from([(70000, 0), (20000, 8000)])),
    )


def apply(r: Rig, a: tuple[Any, ...]) -> None:
    kind = a[0]
    if kind == "min":
        r.minutes(a[1])
    elif kind == "sub" or kind == "late" or kind == "fwd":
        r.clock_step(a[1], a[1])                 # real time passes as the clock says (a stall)
    elif kind == "back":
        r.clock_step(-a[1], a[2])                # the clock went back; any real time passed
    elif kind == "jitter":
        for _ in range(a[1]):
            r.clock_step(-a[2], 0)
            r.clock_step(a[2] + a[3], a[3])
    elif kind == "reboot":
        r.reboot_as(a[1], a[2], a[3])
    elif kind == "therapy":
        r.therapy(a[1])
    elif kind == "bag":
        r.bag(a[1])
    elif kind == "ack":
        r.ack()
    elif kind == "start":
        r.start()
    elif kind == "stop":
        r.stop(a[1])
    elif kind == "clear":
        r.clear_fault()
    elif kind == "reaction":
        r.command(pump.CMD_REACTION, [a[1], a[2], k.SCALE_CTCAE])
    elif kind == "resolved":
        for rx in range(k.RX_CRS, k.RX_OTHER + 1):     # every open reaction
            r.command(pump.CMD_RESOLVED, [rx])
    elif kind == "setup":
        r.setup(a[1], a[2][0], a[2][1])


@st.composite
def campaigns(draw: st.DrawFn) -> tuple[int, int, list[tuple[Any, ...]]]:
    wrap = draw(st.booleans())
    period = WRAP_PERIOD_MS if wrap else 0
    start = draw(st.one_of(st.integers(WRAP_PERIOD_MS - 30 * MS_PER_MIN, WRAP_PERIOD_MS - 1),
                           st.integers(0, WRAP_PERIOD_MS - 1))) if wrap else draw(st.integers(0, 10 ** 12))
    actions = draw(st.lists(_action(wrap), min_size=1, max_size=40))
    return period, start, actions


@settings(max_examples=examples(150))
@given(campaigns())
def test_L2_dose_28_L2_reinit_4h_random_clock_faults_never_overdose_or_under_count(campaign):
    period, start, actions = campaign
    r = Rig(period_ms=period, start_ms=start)
    r.therapy()
    for a in actions:
        apply(r, a)                              # the rig's oracle raises on the first failure
    assert r.overdoses == 0 and r.under_counted == 0 and r.other == 0


def test_the_oracle_catches_an_under_counted_interruption():
    """The random campaign's interruption check can fail: a board that reports a 5 h outage
    as 10 min leaves a stopped infusion restartable without acknowledgements."""
    r = Rig()
    assert r.therapy() == k.OK
    r.stop()
    r.true_ms += 300 * MS_PER_MIN
    r._controller()
    r.c.boot(10)
    with pytest.raises(AssertionError, match="300 min of real time"):
        r.check()


def test_the_oracle_catches_a_lost_minute_at_the_wrap():
    """...and its clock accounting can fail: a clock whose diff ignores the wrap."""
    class NaiveClock(simhal.SimClock):
        def diff(self, a, b):
            return a - b
    r = Rig(period_ms=WRAP_PERIOD_MS, start_ms=WRAP_PERIOD_MS - 30000)
    r.clock = NaiveClock(WRAP_PERIOD_MS - 30000, WRAP_PERIOD_MS)
    r._controller()
    r.c.boot(-1)
    with pytest.raises(AssertionError, match="clock fault"):
        r.clock_step(MS_PER_MIN, MS_PER_MIN)


# ---------------------------------------------------------------- targeted
def test_L2_reinit_4h_known_outages_from_the_last_minute_never_under_count():
    """Reboots with most of a minute in RAM each time: with outages measured from the last
    counted minute (the rig's contract), the kernel counts at least the real time, and 4 h of
    it needs re-initiation. (Measured from the power cut, 121 such reboots would count 121 min
    for 242 min of real time.)"""
    r = Rig()
    assert r.therapy() == k.OK
    r.stop()
    for _ in range(121):                         # 121 x (59.999 s in RAM + 59.999 s off)
        r.clock_step(59999, 59999)
        r.reboot(59999)
    s = r.c.s
    assert s.now_min - s.int_start_min >= r.true_ms // MS_PER_MIN >= 240
    assert s.reinit_needed == 1
    assert start_without_acks(s) == k.E_REINIT


def test_L2_dose_28_late_ticks_book_exactly_what_the_good_clock_books():
    """Catch-up is accounting, not extra drug: 24 h of late ticks books what 1440 good
    minutes book, the day's cap is never passed and the window total is the bag's rate."""
    good, late = Rig(), Rig()
    for r in (good, late):
        assert r.therapy(48) == k.OK
    good.minutes(1440)
    for _ in range(288):
        late.clock_step(pump.MAX_GAP_MS, pump.MAX_GAP_MS)
    assert late.c.s.now_min == good.c.s.now_min == 1440
    # 1440 minutes ran and the 1441st is booked, in flight (booked before it runs)
    assert late.c.s.course_ng == good.c.s.course_ng == (1440 + 1) * 28000 // 1440
    assert late.c.s.day_ng == good.c.s.day_ng <= 28000
    assert late.c.s.bag_ng == good.c.s.bag_ng and late.c.s.bag_ul == good.c.s.bag_ul


def test_repeated_clock_fault_changes_nothing_and_writes_nothing():
    r = Rig()
    assert r.therapy() == k.OK
    r.clock_step(-1000, 0)
    writes, events = r.storage.writes, r.c.journal.event_seq
    before = dict(r.c.s.__dict__)
    for _ in range(1000):
        assert r.clock_step(-1, 0) == -1
    assert dict(r.c.s.__dict__) == before
    assert (r.storage.writes, r.c.journal.event_seq) == (writes, events)   # no flash wear, ring kept
    # a bag loaded while latched is discarded by the next fault, and that one is recorded
    assert r.bag(24) == k.OK
    r.clock_step(-1, 0)
    assert r.c.s.bag_loaded == 0 and r.c.journal.event_seq > events


def test_clock_fault_event_logs_the_gap_in_seconds_clamped():
    r = Rig()
    r.clock_step(-90000, 0)
    r.clear_fault()
    r.clock_step(10 ** 15, 10 ** 15)             # a non-wrapping clock jumping 31,000 years
    evs = [e for e in r.c.journal.events() if e[2] == journal.EV_FAULT]
    assert [(e[3], e[4]) for e in evs] == [(pump.FAULT_CLOCK, -90), (pump.FAULT_CLOCK, pump.GAP_LOG_MAX_S)]


def test_catch_up_per_poll_covers_the_longest_tolerated_gap():
    assert pump.MAX_TICKS_PER_POLL * MS_PER_MIN > pump.MAX_GAP_MS + MS_PER_MIN - 1


# ---------------------------------------------------------------- the watchdog (board only)
class FakeWDT:
    created: list[int] = []

    def __init__(self, timeout: int) -> None:
        FakeWDT.created.append(timeout)
        self.fed = 0

    def feed(self) -> None:
        self.fed += 1


def test_watchdog_starts_machine_wdt_with_its_timeout(monkeypatch):
    FakeWDT.created = []
    monkeypatch.setattr(hal, "machine", types.SimpleNamespace(WDT=FakeWDT))
    w = hal.Watchdog()
    w.feed()
    w.feed()
    assert FakeWDT.created == [hal.WDT_TIMEOUT_MS] and w.wdt.fed == 2


def test_watchdog_timeout_is_within_what_poll_tolerates_and_the_wrap_tells_apart():
    """A stall the watchdog lets through is a late tick for poll, never an ambiguous wrap:
    so a hung loop reboots (outage unknown) before time could be mis-counted."""
    assert hal.WDT_TIMEOUT_MS <= 8388                   # the RP2040's longest
    assert hal.WDT_TIMEOUT_MS < pump.MAX_GAP_MS < WRAP_PERIOD_MS // 2


def test_watchdog_is_fed_on_every_pass_of_the_board_loop():
    class Uart:
        def __init__(self) -> None:
            self.reads = 0

        def any(self) -> int:
            self.reads += 1
            if self.reads > 25:
                raise KeyboardInterrupt   # how the test leaves the loop
            return 0

        def write(self, data: bytes) -> None:
            pass

    class Watchdog:
        fed = 0

        def feed(self) -> None:
            Watchdog.fed += 1

    uart, motor = Uart(), simhal.SimMotor()
    c = pump.Controller(simhal.MemStorage(journal.TOTAL_BYTES), simhal.SimClock(), motor)
    transport = main.UartTransport(uart, Watchdog())
    transport.idle = lambda: None                      # type: ignore[method-assign]
    board = main.Board(transport, c)
    board.boot(-1)
    motor.ul_per_h = 999
    with pytest.raises(KeyboardInterrupt):
        board.run()
    assert Watchdog.fed == uart.reads == 26
    assert motor.ul_per_h == 0                          # the loop's exit stops the motor


def test_reboot_after_a_watchdog_reset_is_an_unknown_outage():
    """What a watchdog reset leads to on a board (main.run boots with -1): re-initiation and
    no bag (L2-reinit-4h, L2.6-bag-*)."""
    r = Rig()
    assert r.therapy() == k.OK
    r.minutes(3)
    r.reboot_unknown(hal.WDT_TIMEOUT_MS)
    s = r.c.s
    assert (s.mode, s.reinit_needed, s.int_unknown, s.bag_loaded) == (k.MODE_STOPPED, 1, 1, 0)


# ---------------------------------------------------------------- the verifier
# (tests/test_verify_proofs.py checks that the clock properties are proved on the landed kernel)
@pytest.mark.parametrize("old, new, pid, check", [
    # L2.6-bag-*: a clock fault that keeps the bag
    ("""    _latch_fault(s)
    if s.bag_loaded == 1:
        _unload_bag(s)
""", """    _latch_fault(s)
    if s.bag_loaded == 2:
        _unload_bag(s)
""", "clock-fault", "clock fault -> no bag loaded"),
    # L2-reinit-4h: an unknown interruption that does not ask for re-initiation
    ("    if off_min >= REINIT_MIN or s.int_unknown == 1:          # L2-reinit-4h\n",
     "    if off_min >= REINIT_MIN:          # L2-reinit-4h\n", "interruption-count",
     "open interruption >= 240 min or of unknown length -> reinit_needed"),
    # L2-reinit-4h: an unknown outage taken as a short known one
    ("""    if outage_min < 0 or outage_min > OUTAGE_MAX_MIN:       # unknown, backwards or implausible
        if s.int_start_min >= 0:
            s.int_unknown = 1
""", """    if outage_min < 0 or outage_min > OUTAGE_MAX_MIN:       # unknown, backwards or implausible
        if s.int_start_min >= 0:
            s.int_unknown = 0
""", "unknown-outage", "unknown or backwards outage while running or interrupted"),
    # the clock fault that counts the unknown gap as minutes
    ("""    _latch_fault(s)
    if s.bag_loaded == 1:
""", """    _latch_fault(s)
    s.now_min = min(s.now_min + 5, COUNTER_MAX)
    if s.bag_loaded == 1:
""", "interruption-count", "other entry points leave now_min unchanged"),
])
def test_planted_clock_bugs_are_not_proved(tmp_path, old, new, pid, check):
    src = KERNEL.read_text()
    assert src.count(old) == 1, old
    path = tmp_path / "kernel.py"
    path.write_text(src.replace(old, new))
    run = prove(path, by_id([pid]), depth=0, max_k=1, trace_dir=tmp_path / "traces")
    (res,) = run.properties
    assert res.status != PROVED
    assert any(check in c for c in res.failing_checks), res.failing_checks
