"""The firmware kernel and the label model, driven by the same random inputs, must agree.

A Hypothesis state machine sets up patients, orders bags, runs whole infusion days, pauses,
enters reactions and cuts power, through the firmware's Controller (kernel + record). After
every step the kernel's cap in force must equal the cap model/ derives for that cycle day,
and every bag decision must be the decision model.orders.validate_bag makes.

Two documented interpretations make the kernel stricter than the day-based model; where one
applies the test requires only that the kernel is no more permissive:
- the R/R step window counts 7 days of infusion across a new cycle (L2.2-step, L2.4-new-cycle);
- the restart window counts 7 days of infusion across a cycle end (L2.4-restart-9).

A power cycle never changes `locked`, except for the lock the label requires: a known outage
that takes an open grade 3 neurologic (ICANS) hold past 7 days (L2.4-neuro-3) or an open other
grade >= 3 hold past 14 days (L2.4-other-3), each counted from the reaction's own onset. The
test keeps its own clock and the onset of every hold it opened, so it decides that from the
label's numbers (model.label), not from the kernel's fields; between power cycles, an unlocked
kernel must never hold a reaction past its limit.

Failures that exploring (HYPOTHESIS_PROFILE=explore, bench/explore.py) finds are replayed step by
step by the regression tests at the end of this file, so that every run checks them.
"""
from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import settings, strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from hypo import examples

from blinpump.firmware import journal, kernel as k, pump, simhal
from blinpump.model import label as label_data
from blinpump.model.errors import ModelError
from blinpump.model.dose import cap_for_day, low_cap_mcg_per_day
from blinpump.model.limits import kernel_limits
from blinpump.model.orders import BagOrder, validate_bag
from blinpump.model.patient import Patient

PID = 77
DAY_MIN = 1440
INDICATIONS = {"mrd": k.IND_MRD, "rr": k.IND_RR, "consolidation": k.IND_CONS}
WEIGHTS_KG = [70.0, 45.0, 44.999, 30.0, 12.5, 5.4, 5.39, 3.2]
BSAS_M2 = [0.25, 0.5, 1.0, 1.2345, 1.8667, 2.1]
# Table 4 time limits from the label's numbers (model.label), not from the kernel's constants
NEURO3_RESOLVE_MAX_MIN = label_data.NEURO3_MAX_RESOLUTION_DAYS.value * DAY_MIN    # L2.4-neuro-3: 10080
OTHER3_RESOLVE_MAX_MIN = label_data.OTHER3_MAX_RESOLUTION_DAYS.value * DAY_MIN    # L2.4-other-3: 20160


def resolve_limit_min(kind: int, grade: int) -> int | None:
    """How long an open hold may last before the label discontinues permanently, or None."""
    if kind in (k.RX_NEURO, k.RX_ICANS) and grade == 3:
        return NEURO3_RESOLVE_MAX_MIN                                           # L2.4-neuro-3
    if kind == k.RX_OTHER and grade >= 3:
        return OTHER3_RESOLVE_MAX_MIN                                           # L2.4-other-3
    return None


def ng(mcg: Decimal) -> int:
    return int((mcg * 1000).to_integral_value(rounding="ROUND_FLOOR"))


class KernelVsModel(RuleBasedStateMachine):
    @initialize(indication=st.sampled_from(sorted(INDICATIONS)), weight_kg=st.sampled_from(WEIGHTS_KG),
                bsa_m2=st.sampled_from(BSAS_M2))
    def set_up(self, indication: str, weight_kg: float, bsa_m2: float) -> None:
        self.storage = simhal.MemStorage(journal.TOTAL_BYTES)
        self.board = pump.Controller(self.storage, simhal.SimClock(), simhal.SimMotor())
        self.board.boot()
        self.patient = Patient(indication, weight_kg, bsa_m2)  # type: ignore[arg-type]
        lim = kernel_limits(self.patient)
        course = lim.max_cycles if indication == "consolidation" else 0     # L2.3-course: the site's count
        status = self.board.command(pump.CMD_SETUP, [PID, lim.indication_code, lim.weight_g, lim.bsa_cm2, course])
        assert status == k.OK, status
        # L2-dose-28, L2.2-step: the kernel derives the same caps as the model
        assert self.s.cap_full_ng_per_day == lim.cap_full_ng_per_day
        assert self.s.cap_low_ng_per_day == lim.cap_low_ng_per_day
        assert self.s.max_cycles == lim.max_cycles
        self.restart: tuple[int, int] | None = None    # (cycle, infusion day) of the last restart
        self.clock_min = 0                              # the test's own clock: minutes the kernel was told of
        self.holds: list[tuple[int, int, int]] = []     # (kind, grade, onset minute) of each open reaction, one
                                                        # per kind (the same kind again is the same reaction)

    @property
    def s(self) -> k.State:
        return self.board.s

    def _day(self) -> int:
        return self.s.cycle_run_min // DAY_MIN + 1

    def _model_cap_ng(self) -> tuple[int, bool]:
        """The model's cap for today, and whether the kernel may be stricter (see module doc)."""
        cap, _ = cap_for_day(self.patient, self.s.cycle, self._day())
        stricter_ok = False
        if self.restart is not None and self.s.low_left_min > 0:
            r_cycle, r_day = self.restart
            if r_cycle == self.s.cycle and r_day <= self._day() < r_day + 7:
                cap = min(cap, low_cap_mcg_per_day(self.patient))
            else:
                stricter_ok = True
        if self.patient.indication == "rr" and self.s.step_run_min < 7 * DAY_MIN and self.s.cycle > 1:
            stricter_ok = True
        return ng(cap), stricter_ok

    def _overdue(self, at_min: int) -> list[tuple[int, int, int]]:
        """The open holds the label discontinues permanently at minute at_min (L2.4-neuro-3,
        L2.4-other-3: resolution takes more than 7, resp. 14 days from the reaction's own onset)."""
        out = []
        for kind, grade, onset in self.holds:
            limit = resolve_limit_min(kind, grade)
            if limit is not None and at_min - onset > limit:
                out.append((kind, grade, onset))
        return out

    def enter_reaction(self, kind: int, grade: int) -> int:
        """A clinician enters a reaction; the test notes the onset of a hold with a time limit (an
        open hold of the same kind keeps its onset: it is the same reaction, L2.4-neuro-3)."""
        status = self.board.command(pump.CMD_REACTION, [kind, grade, k.SCALE_CTCAE])
        if status == k.OK and self.s.locked == 0 and resolve_limit_min(kind, grade) is not None:
            same = [h for h in self.holds if h[0] == kind]
            if same:
                self.holds = [h for h in self.holds if h[0] != kind] + [(kind, max(grade, same[0][1]), same[0][2])]
            else:
                self.holds.append((kind, grade, self.clock_min))
        return status

    def mark_resolved(self, kind: int) -> int:
        """The clinician reports the reaction of `kind` resolved; an accepted release closes its hold."""
        status = self.board.command(pump.CMD_RESOLVED, [kind])
        if status == k.OK:
            self.holds = [h for h in self.holds if h[0] != kind]
        return status

    def _comparable(self) -> bool:
        s = self.s
        return (s.phase == k.PHASE_INFUSION and s.locked == 0 and s.mode == k.MODE_STOPPED
                and s.cycle <= s.max_cycles and s.cycle_run_min % DAY_MIN == 0)

    # ---------------------------------------------------------------- rules
    @rule(days=st.sampled_from([1, 2, 3, 4, 7]), fraction=st.sampled_from(["0.5", "1", "over"]),
          room_h=st.sampled_from([0, 12, 24, 25, 50]), fridge_h=st.sampled_from([0, 100, 193, 336, 337]))
    def order_bag(self, days: int, fraction: str, room_h: int, fridge_h: int) -> None:
        cap_ng, stricter_ok = self._model_cap_ng()
        rate_ng = cap_ng + 1 if fraction == "over" else int(cap_ng * Decimal(fraction))
        rate_ng = max(rate_ng, 1)
        duration_h = 24 * days
        preservative = duration_h >= 72
        # EXT-rates: a bag as prepared, 9/8 of what it infuses at the table rate; its drug is the
        # daily dose scaled to the whole bag
        rate_ml = label_data.DEFAULT_EXT.bag_rate_ml_per_h(duration_h)
        rate_ul = int(rate_ml * 1000)
        volume_ul = rate_ul * duration_h * 9 // 8
        drug_ng = rate_ng * volume_ul // (rate_ul * 24)
        status = self.board.command(pump.CMD_BAG, [PID, self.board.s.last_bag_id + 1, drug_ng, volume_ul, rate_ul,
                                                   duration_h, int(preservative), room_h * 60, fridge_h * 60])
        if not self._comparable():
            return
        order = BagOrder(drug_mcg=float(Decimal(drug_ng) / 1000), volume_ml=volume_ul / 1000,
                         rate_ml_per_h=float(rate_ml), duration_h=duration_h, preservative=preservative,
                         room_temp_h_so_far=room_h, refrigerated_h_so_far=fridge_h)
        restart_day = None
        if self.restart is not None and self.restart[0] == self.s.cycle:
            restart_day = self.restart[1]
        try:
            validate_bag(self.patient, order, self.s.cycle, self._day(), restart_day=restart_day)
            model_ok, model_clause = True, ""
        except ModelError as exc:
            model_ok, model_clause = False, exc.clause
        kernel_ok = status == k.OK
        if stricter_ok and not kernel_ok and model_ok:
            assert status == k.E_DOSE_CAP
            return
        if model_ok and status == k.E_DOSE_CAP and -(-drug_ng * rate_ul * 24 // volume_ul) > cap_ng:
            # the kernel's units: caps in whole ng rounded down, a bag's daily dose rounded up to
            # the ng (README); a bag within 1 ng/day of a cap that is not a whole ng is refused
            assert drug_ng * rate_ul * 24 < (cap_ng + 1) * volume_ul
            return
        assert kernel_ok == model_ok, (status, model_clause, self.s.cycle, self._day())

    @rule()
    def start(self) -> None:
        self.board.command(pump.CMD_ACK, [k.ACK_PREMED])
        self.board.command(pump.CMD_ACK, [k.ACK_SUPERVISION])
        status = self.board.command(pump.CMD_START, [])
        if status == k.OK:
            cap_ng, stricter_ok = self._model_cap_ng()
            assert self.s.bag_ng_per_day <= cap_ng or stricter_ok

    @rule(days=st.integers(1, 3))
    def run_days(self, days: int) -> None:
        # kernel ticks, then one record write: the controller's per-minute write is slow here
        for _ in range(days * DAY_MIN):
            k.tick(self.s)
        self.board.tick()
        self.clock_min += days * DAY_MIN + 1

    @rule(minutes=st.sampled_from([30, 239, 240, 300, 7 * DAY_MIN, 7 * DAY_MIN + 1]))
    def pause(self, minutes: int) -> None:
        was_running = self.s.mode == k.MODE_RUNNING
        self.board.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        for _ in range(minutes - 1):
            k.tick(self.s)
        self.board.tick()
        self.clock_min += minutes
        if was_running and self.s.mode == k.MODE_STOPPED and self.s.int_start_min >= 0:
            # L2-reinit-4h: flagged exactly from 4 h on
            assert self.s.reinit_needed == (1 if minutes >= 240 else 0)

    @rule(kind=st.sampled_from([k.RX_CRS, k.RX_OTHER, k.RX_ICANS]), grade=st.sampled_from([2, 3]))
    def reaction_then_resolved(self, kind: int, grade: int) -> None:
        if self.enter_reaction(kind, grade) != k.OK or not k._holding(self.s):
            return
        if self.mark_resolved(kind) == k.OK:     # each resolution starts the 7 days at the low dose
            self.restart = (self.s.cycle, self._day())
            assert self.s.cap_ng_per_day == ng(low_cap_mcg_per_day(self.patient))  # L2.4-restart-9

    @rule(weight_kg=st.sampled_from(WEIGHTS_KG), bsa_m2=st.sampled_from(BSAS_M2))
    def reweigh(self, weight_kg: float, bsa_m2: float) -> None:
        """L2-dose-28: the dose follows the patient's current weight and BSA (when stopped)."""
        self.board.command(pump.CMD_STOP, [k.STOP_CLINICIAN])
        new = Patient(self.patient.indication, weight_kg, bsa_m2)
        lim = kernel_limits(new)
        status = self.board.command(pump.CMD_UPDATE_PATIENT, [lim.weight_g, lim.bsa_cm2])
        if self.s.fault == 1:
            return
        assert status == k.OK, status
        self.patient = new
        assert (self.s.cap_full_ng_per_day, self.s.cap_low_ng_per_day) == (lim.cap_full_ng_per_day,
                                                                         lim.cap_low_ng_per_day)
        if self.s.bag_loaded == 1:               # a bag above the new cap never stays loaded
            assert self.s.bag_ng_per_day <= self.s.cap_ng_per_day

    @rule(outage_min=st.sampled_from([-1, 0, 5, 300]))
    def power_cycle(self, outage_min: int) -> None:
        before = dict(self.s.__dict__)
        # a known outage is counted; an unknown one (-1) adds no minute: the kernel cannot know it
        counted = outage_min if outage_min >= 0 else 0
        overdue = self._overdue(self.clock_min + counted) if before["locked"] == 0 else []
        self.board = pump.Controller(self.storage, simhal.SimClock(), simhal.SimMotor())
        assert self.board.boot(outage_min) == journal.LOAD_OK
        self.clock_min += counted
        # nothing delivered is lost; the motor never restarts by itself
        assert self.s.course_ng == before["course_ng"]
        if overdue:
            # L2.4-neuro-3, L2.4-other-3: the outage took an open hold past its limit: locked for good
            assert self.s.locked == 1, (outage_min, overdue, self.clock_min)
            assert self.s.lock_reason in {kind for kind, _, _ in overdue}, (self.s.lock_reason, overdue)
        else:
            assert self.s.locked == before["locked"], (outage_min, self.holds, self.clock_min)
        assert self.s.mode != k.MODE_RUNNING
        assert self.board.motor.ul_per_h == 0

    # ---------------------------------------------------------------- invariants
    @invariant()
    def kernel_invariant_holds(self) -> None:
        assert k.invariant(self.s)

    @invariant()
    def kernel_clock_is_the_test_clock(self) -> None:
        assert self.s.now_min == self.clock_min, (self.s.now_min, self.clock_min)

    @invariant()
    def no_hold_past_its_label_limit_while_unlocked(self) -> None:
        # L2.4-neuro-3, L2.4-other-3: the kernel locks as soon as a hold passes its limit
        if self.s.locked == 0:
            assert not self._overdue(self.clock_min), (self.holds, self.clock_min)

    @invariant()
    def cap_in_force_matches_model(self) -> None:
        s = self.s
        if s.phase != k.PHASE_INFUSION or s.cycle > s.max_cycles or s.cycle_run_min % DAY_MIN:
            return
        cap_ng, stricter_ok = self._model_cap_ng()
        if stricter_ok:
            assert s.cap_ng_per_day <= ng(Decimal(28))
            return
        assert s.cap_ng_per_day == cap_ng, (s.cap_ng_per_day, cap_ng, s.cycle, self._day())

    @invariant()
    def running_rate_within_model_cap(self) -> None:
        if self.s.mode == k.MODE_RUNNING:
            assert self.s.bag_ng_per_day <= self.s.cap_ng_per_day
            assert self.board.motor.ul_per_h == self.s.bag_ul_per_h


TestKernelVsModel = KernelVsModel.TestCase
TestKernelVsModel.settings = settings(max_examples=examples(150), stateful_step_count=30)


# ---------------------------------------------------------------- regression cases
# Stateful tests take no @example: each case found by exploring is replayed here, step by step,
# with every invariant checked after each step as Hypothesis does.

def replay(indication: str, weight_kg: float, bsa_m2: float, steps: list[tuple[str, dict[str, int]]]) -> KernelVsModel:
    machine = KernelVsModel()
    machine.set_up(indication=indication, weight_kg=weight_kg, bsa_m2=bsa_m2)
    for inv in machine.invariants:
        inv.function(machine)
    for name, kwargs in steps:
        getattr(machine, name)(**kwargs)
        for inv in machine.invariants:
            inv.function(machine)
    machine.teardown()
    return machine


def test_L2_4_neuro_3_known_outage_past_7_days_of_an_icans_3_hold_locks():
    """Found with HYPOTHESIS_PROFILE=explore (about 2 seeds in 100 of the old test failed here): an
    ICANS grade 3 hold, 10080 min of pause (exactly 7 days: not yet past), then a power cycle with a
    known 5 min outage. The kernel rightly locks (held 10085 min > 7 days, L2.4-neuro-3); the old
    test required `locked` unchanged by every power cycle."""
    m = replay("consolidation", 70.0, 0.25, [
        ("reaction_then_resolved", {"kind": k.RX_ICANS, "grade": 3}),   # resolved refused: under 3 days
        ("pause", {"minutes": 7 * DAY_MIN}),
        ("power_cycle", {"outage_min": 5}),
    ])
    assert m.s.locked == 1 and m.s.lock_reason == k.RX_ICANS
    assert m.s.now_min == 7 * DAY_MIN + 5


def test_L2_4_neuro_3_power_cycle_within_7_days_of_an_icans_3_hold_keeps_it_unlocked():
    """The boundary: a 0 min or unknown outage at exactly 7 days held changes nothing (the kernel
    cannot count an unknown outage); the first tick after that locks."""
    m = replay("consolidation", 70.0, 0.25, [
        ("reaction_then_resolved", {"kind": k.RX_ICANS, "grade": 3}),
        ("pause", {"minutes": 7 * DAY_MIN}),
        ("power_cycle", {"outage_min": 0}),
        ("power_cycle", {"outage_min": -1}),
    ])
    assert m.s.locked == 0 and m.s.rx_icans == 3
    m.pause(1)
    assert m.s.locked == 1


def test_L2_4_other_3_known_outage_past_14_days_of_an_other_3_hold_locks():
    """The same for another grade 3 reaction, whose limit is 14 days (L2.4-other-3). The state
    machine resolves such a reaction at once, so this case is built here."""
    m = KernelVsModel()
    m.set_up(indication="mrd", weight_kg=70.0, bsa_m2=1.8667)
    assert m.enter_reaction(k.RX_OTHER, 3) == k.OK and m.s.rx_other == 3
    m.pause(2 * 7 * DAY_MIN)
    m.power_cycle(0)
    assert m.s.locked == 0                      # exactly 14 days: not yet past
    m.power_cycle(5)
    assert m.s.locked == 1 and m.s.lock_reason == k.RX_OTHER
    m.kernel_clock_is_the_test_clock()
    m.no_hold_past_its_label_limit_while_unlocked()


def test_L2_dose_28_a_bag_within_1_ng_of_a_cap_that_is_not_a_whole_ng_is_refused():
    """Found with HYPOTHESIS_PROFILE=explore: 15 mcg/m2 x 1.2345 m2 is 18 517.5 ng a day; the kernel
    caps at 18 517 ng (whole ng, rounded down) and a 270 mL bag of 20 832 ng at 10 mL/h gives
    18 517.33 ng a day, rounded up to 18 518: refused, where the exact label allows it. The
    difference is under 1 ng a day, the kernel's unit (README, "The kernel's units")."""
    m = replay("consolidation", 44.999, 1.2345, [
        ("order_bag", {"days": 1, "fraction": "over", "room_h": 0, "fridge_h": 0}),
    ])
    assert m.s.bag_loaded == 0 and m.s.cap_full_ng_per_day == 18517


def test_L2_4_neuro_3_icans_3_after_an_open_crs_3_keeps_its_own_3_day_floor():
    """ICANS can follow CRS (L2.4-neuro-3, 5.2): a grade 3 ICANS entered 2 days into an open grade 3
    CRS hold is withheld 3 days from its own onset, and the pump restarts only when both are
    resolved, at the reduced dose (L2.4-restart-9)."""
    m = KernelVsModel()
    m.set_up(indication="mrd", weight_kg=70.0, bsa_m2=1.8667)
    assert m.enter_reaction(k.RX_CRS, 3) == k.OK and m.s.rx_crs == 3
    m.pause(2 * DAY_MIN)
    assert m.enter_reaction(k.RX_ICANS, 3) == k.OK and (m.s.rx_crs, m.s.rx_icans) == (3, 3)
    m.pause(DAY_MIN + 1)
    assert m.mark_resolved(k.RX_ICANS) == k.E_WITHHOLD      # 1 day of ICANS: under its 3-day floor
    assert m.mark_resolved(k.RX_CRS) == k.OK                # CRS resolves on its own
    assert m.s.rx_icans == 3 and k.start(m.s) == k.E_WITHHOLD
    m.pause(2 * DAY_MIN - 1)
    assert m.mark_resolved(k.RX_ICANS) == k.OK              # exactly 3 days from its own onset
    assert not k._holding(m.s) and m.s.cap_ng_per_day == m.s.cap_low_ng_per_day
