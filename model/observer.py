"""The label as an independent observer: what the label requires of the pump, input by input.

This is the label's rules written a second time, as a state machine, for the verifier to run
beside the kernel (verify/product.py). It is fed only with the inputs the kernel gets (the
same entry points, the same arguments, the minutes and the outages) and keeps its own ghost
state in the label's terms: when the overdose was, when each premedication was given, each
reaction's onset, the minutes infused in the cycle and in the step and restart windows. For
every input it decides what the label requires: the answer (accepted, or refused with the
code of the clause), whether the motor may run, and at what drug rate and flow. It also keeps
what the nurse is told (EXT-pump: "have an alarm"): why the last stop of a running motor
happened, as the protocol's STOP reasons, and which alarms sound, as the protocol's alarm bits
(those the kernel raises: the board's own sensors raise line and battery alarms beside them), so
a pump that reports an overdose as a bag change, or never sounds the bag's end, is not equal to it.

It shares no code and no state with firmware/kernel.py: its numbers come from LABEL.md (clause
IDs beside each) and from the protocol's documented answer codes (docs/protocol.md), and where
the kernel keeps a counter the observer often keeps a time, or the other way round. A reviewer
reads it against the seeds; `blinpump prove` proves the kernel equal to it on every decision.

Written in the verifiable subset (verify/subset.py), so it also runs as plain Python
(tests/test_kernel_vs_observer.py drives both with the same random inputs).

Where the label is silent, the observer states the documented protocol, with the reason:
- which refusal answers first when several apply (docs/protocol.md, "Which answer comes first");
- the minute grid: the drug of a minute is booked when the minute begins (START books the
  first), and what the booked minutes complete ends at the next minute (a bag's last minute is
  given; a 28th day is given in full);
- the clock: a minute of a trusted clock is a tick; a known outage counts in full; time that
  cannot be known is never counted, and makes an open interruption "4 h or more";
- the daily guard: no 24-hour window gets more drug than the highest cap in force in it;
- the record's totals (drug booked from the bag and in the cycle) count the minutes' drug as
  booked; which kind of reaction ended therapy is the one whose rule ended it, and when several
  reactions pass their time limit in the same minute, the first in the protocol's order of kinds
  (ICANS, neurologic event, seizure, other);
- alarms: each stop the pump makes by itself sounds one (the cap, the bag's end, its storage,
  power lost while infusing, a fault), but for the end of a cycle's 28th day, which the nurse
  knows from the plan and which opens no interruption (the reason of the last stop is kept);
  re-initiation falling due and discontinuation sound one too;
  the nurse silences any, but the fault, re-initiation and discontinuation alarms stay while
  their cause does; a bag taken off because its storage can no longer be known sounds the
  storage alarm.
"""

# ---- the protocol's answers (docs/protocol.md), one per clause ----
ACCEPT = 0
NOT_NOW = 1                 # not valid in this state
NO_INDICATION = 2           # L1.1, L1.2, L1.3
BAD_WEIGHT = 3              # L2-weight-45
BAD_BSA = 4                 # L2-dose-28
OTHER_PATIENT = 5           # L2.5-errors
BAD_DURATION = 6            # L2.5-durations
BAD_PRESERVATIVE = 7        # L2.5-durations
UNDER_MIN_WEIGHT = 8        # L2.5-min-weight
OVER_CAP = 9                # L2-dose-28, L2.2-step, L2.4-restart-9
STORAGE_EXCEEDED = 10       # L2.6-bag-*
IMPLAUSIBLE_BAG = 11        # L2.5-errors
NO_BAG = 12
ACK_MISSING = 13            # L2-reinit-4h, L2-premed
STEP_PREMED_MISSING = 14    # L2-premed, L2.2-step
TREATMENT_FREE = 15         # L2-cycle-42, L2.2-cycle-84
DISCONTINUED = 16           # Table 4: discontinue permanently
WITHHELD = 17               # Table 4: withhold until resolved
OVERDOSE_WAIT = 18          # EXT-overdose-12h
NO_FLUSH = 19               # EXT-no-flush
ASK_CLINICIAN = 20          # L2.4-other-4, L2.4-new-cycle
COURSE_OVER = 21            # L2.1-course, L2.2-course, L2.3-course
BAD_ARGUMENT = 22
FAULTED = 23
PAST_DAY_28 = 24            # L2-cycle-42
BAG_HUNG_BEFORE = 25        # L2.6-bag-*, L2.5-errors
BAD_RATE = 26               # EXT-rates
BAD_SCALE = 27              # L2.4-grading

# ---- the inputs' codes (docs/protocol.md) ----
MRD = 1                     # L1.1
RELAPSED = 2                # L1.2
CONSOLIDATION = 3           # L1.3
CRS = 1
NEUROLOGIC = 2
ICANS = 3
SEIZURE = 4
OTHER = 5
CTCAE = 1                   # L2.4-grading
ASTCT = 2
PREMEDICATION = 1
SUPERVISION = 2
STOP_FOR_REACTION = 3       # the STOP reason "adverse reaction" (L2.4-new-cycle)
STOP_REASON_MAX = 11
# why an interruption began, as the protocol reports it (docs/protocol.md, STOP reasons); the
# clinician's STOP gives its own reason, 1..11, and the pump stops by itself for these
HALT_OVERDOSE = 4           # EXT-overdose-12h
HALT_BAG_END = 5            # L2.5-durations, EXT-rates: the bag's time or volume is given
HALT_BAG_EXPIRED = 6        # L2.6-bag-*: its storage limit is reached
HALT_CAP = 7                # L2-dose-28, L2.2-step: the cap in force would be passed
HALT_POWER = 8
HALT_FAULT = 9
# the alarms the nurse is given (EXT-pump: "have an alarm"), as the protocol's bits
# (docs/protocol.md, alarm bits): each is one flag of the state below
BIT_CAP = 1
BIT_BAG_END = 2
BIT_BAG_EXPIRED = 4
BIT_POWER = 8
BIT_FAULT = 16
BIT_REINIT = 32
BIT_DISCONTINUED = 64

# ---- the label's numbers (LABEL.md), in minutes, ng, uL, g, cm2 ----
DAY = 1440
HOUR = 60
DOSE_FULL_NG = 28000                # L2-dose-28: 28 mcg/day
DOSE_LOW_NG = 9000                  # L2.2-step, L2.4-restart-9: 9 mcg/day
FIXED_DOSE_FROM_G = 45000           # L2-weight-45
PRESERVATIVE_FROM_G = 5400          # L2.5-min-weight
INFUSION_DAYS = 28                  # L2-cycle-42
SHORT_BREAK_DAYS = 14               # L2-cycle-42
LONG_BREAK_DAYS = 56                # L2.2-cycle-84
FIRST_CONTINUED_CYCLE = 6           # L2.2-cycle-84: cycles 6-9
MRD_CYCLES = 4                      # L2.1-course: 1 induction + up to 3 consolidation
RELAPSED_CYCLES = 9                 # L2.2-course: 2 + 3 + 4
SITE_CYCLES_MAX = 9                 # L2.3-course: the site's count, given at set-up
STEP_DAYS = 7                       # L2.2-step: days 1-7
RESTART_DAYS = 7                    # L2.4-restart-9
REINIT_HOURS = 4                    # L2-reinit-4h
PREMED_HOURS = 1                    # L2-premed: within 1 hour prior
NEW_CYCLE_DAYS = 7                  # L2.4-new-cycle: longer than 7 days
OVERDOSE_HOURS = 12                 # EXT-overdose-12h
NEURO3_FLOOR_DAYS = 3               # L2.4-neuro-3: at least 3 days
NEURO3_LIMIT_DAYS = 7               # L2.4-neuro-3: more than 7 days to resolve
OTHER3_LIMIT_DAYS = 14              # L2.4-other-3: more than 14 days to resolve

# ---- the site's table (EXT-rates), uL/h, and the pump's plausibility bounds ----
RATE_1D = 10000
RATE_2D = 5000
RATE_3D = 1800
RATE_4D = 1800
RATE_7D = 600
WEIGHT_LOW_G = 500                  # plausible weights (L2-weight-45)
WEIGHT_HIGH_G = 300000
BSA_LOW_CM2 = 500                   # plausible BSA (L2-dose-28)
BSA_HIGH_CM2 = 35000
VOLUME_LOW_UL = 10000               # plausible bags (L2.5-errors)
VOLUME_HIGH_UL = 1000000
DRUG_HIGH_NG = 392000
LONGEST_OUTAGE_MIN = 5256000        # a longer outage is not a trustworthy clock
CLOCK_TOP = 1000000000              # the board's counters stop here


class State:
    """What the label needs remembered, in its own terms."""

    def __init__(self):
        self.clock_min = 0              # [0, 1000000000] minutes of trusted clock so far
        self.patient = 0                # [0, 1] a patient is set up
        self.infusing = 0               # [0, 1] the motor runs (the decision under proof)
        self.fault = 0                  # [0, 1] a fault is latched: no infusion until cleared
        self.patient_id = 0             # [0, 1000000000]
        self.indication = 0             # [0, 3] L1.1-L1.3
        self.weight_g = 0               # [0, 300000] current weight (L2-dose-28)
        self.bsa_cm2 = 0                # [0, 35000] current BSA, kept below 45 kg only
        self.course_cycles = 0          # [0, 9] cycles of this course (L2.x-course)
        self.cycle = 0                  # [0, 9]
        self.in_break = 0               # [0, 1] treatment-free interval (L2-cycle-42)
        self.course_over = 0            # [0, 1]
        self.cycle_infused_min = 0      # [0, 40320] minutes given in this cycle (L2.4-resume-7d)
        self.break_min = 0              # [0, 1000000000] minutes into the treatment-free interval
        self.step_infused_min = 0       # [0, 10080] R/R minutes given on days 1-7 (L2.2-step)
        self.step_premed = 0            # [0, 1] premedication given for the next step up (L2-premed)
        self.restart_infused_min = 10080    # [0, 10080] minutes given since the last restart (L2.4-restart-9)
        self.premed_due = 0             # [0, 1] L2-premed
        self.supervision_due = 0        # [0, 1] L2-hosp, L2-reinit-4h
        self.premed_at_min = -1         # [-1, 1000000000] when given since due, -1 not given
        self.supervision_given = 0      # [0, 1]
        self.stopped_at_min = -1        # [-1, 1000000000] start of the interruption, -1 none
        self.stop_for_reaction = 0      # [0, 1] the interruption is for an adverse reaction
        self.stop_unknown = 0           # [0, 1] its length cannot be known
        self.stop_reason = 0            # [0, 11] why the last interruption began (STOP reasons), 0 none
        self.reinit_due = 0             # [0, 1] L2-reinit-4h
        self.ask_cycle = 0              # [0, 1] L2.4-new-cycle: the clinician is asked
        self.cycle_goes_on = 0          # [0, 1] L2.4-new-cycle: the clinician chose this cycle
        self.crs = 0                    # [0, 3] open hold: grade, 0 none (L2.4-restart-9)
        self.icans = 0                  # [0, 3] L2.4-icans-2, L2.4-neuro-3
        self.icans_onset_min = 0        # [0, 1000000000]
        self.icans_g3_min = 0           # [0, 1000000000]
        self.neuro = 0                  # [0, 3] L2.4-neuro-3
        self.neuro_onset_min = 0        # [0, 1000000000]
        self.neuro_g3_min = 0           # [0, 1000000000]
        self.seizure = 0                # [0, 3] L2.4-seizure, L2.4-neuro-3
        self.seizure_onset_min = 0      # [0, 1000000000]
        self.seizure_g3_min = 0         # [0, 1000000000]
        self.other = 0                  # [0, 4] L2.4-other-3, L2.4-other-4
        self.other_onset_min = 0        # [0, 1000000000]
        self.dose_given_ng = 0          # [0, 28000] daily drug of the bag running or last run (L2.4-neuro-3)
        self.seizures = 0               # [0, 2] L2.4-seizure
        self.asking_other4 = 0          # [0, 1] L2.4-other-4
        self.discontinued = 0           # [0, 1] Table 4: permanently
        self.discontinued_for = 0       # [0, 5] the kind of reaction that ended therapy, 0 none
        self.overdose_at_min = -1       # [-1, 1000000000] EXT-overdose-12h
        self.bag = 0                    # [0, 1] a bag is hung
        self.bag_id = 0                 # [0, 1000000000]
        self.last_bag_id = 0            # [0, 1000000000]
        self.bag_ng_per_day = 0         # [0, 28000] its drug a day (EXT-rates)
        self.bag_hours = 0              # [0, 168] its duration (L2.5-durations)
        self.bag_volume_ul = 0          # [0, 1000000]
        self.bag_infused_min = 0        # [0, 10080] minutes given from it
        self.bag_given_ng = 0           # [0, 196000] drug booked from it (the record's totals)
        self.cycle_given_ng = 0         # [0, 1000000000] drug booked in this cycle
        self.bag_room_min = 0           # [0, 1000000000] minutes at room temperature (L2.6-bag-*)
        self.bag_low = 0                # [0, 1] hung while the low dose was in force
        self.booked_min = -1            # [-1, 1000000000] the minute last begun from this bag
        self.carry_ng = 0               # [0, 1439] drug owed below one ng, in 1/1440 ng
        self.window_min = 0             # [0, 1439] minutes into the 24 h window
        self.window_ng = 0              # [0, 28000] drug begun in the window
        self.window_cap_ng = 0          # [0, 28000] highest cap in force in the window
        # alarms given and not yet silenced (EXT-pump)
        self.alarm_cap = 0              # [0, 1] stopped at the cap in force
        self.alarm_bag_end = 0          # [0, 1] the bag is given
        self.alarm_bag_expired = 0      # [0, 1] the bag passed its storage, or its storage is unknown
        self.alarm_power = 0            # [0, 1] the power failed while infusing
        self.alarm_fault = 0            # [0, 1] a fault is latched (kept while it is)
        self.alarm_reinit = 0           # [0, 1] re-initiation became due (kept while it is)
        self.alarm_discontinued = 0     # [0, 1] therapy discontinued (kept while it is)


# ---------------------------------------------------------------- the label's quantities

def _full_cap(s):
    """L2-dose-28: 28 mcg/day from 45 kg; below, 15 mcg/m2/day, never above 28."""
    if s.weight_g >= FIXED_DOSE_FROM_G:
        return DOSE_FULL_NG
    return min(s.bsa_cm2 + s.bsa_cm2 // 2, DOSE_FULL_NG)


def _low_cap(s):
    """L2.2-step, L2.4-restart-9: 9 mcg/day from 45 kg; below, 5 mcg/m2/day, never above 9."""
    if s.weight_g >= FIXED_DOSE_FROM_G:
        return DOSE_LOW_NG
    return min(s.bsa_cm2 // 2, DOSE_LOW_NG)


def _in_step(s):
    return s.indication == RELAPSED and s.step_infused_min < STEP_DAYS * DAY     # L2.2-step


def _in_restart(s):
    return s.restart_infused_min < RESTART_DAYS * DAY                            # L2.4-restart-9


def _cap(s):
    if _in_step(s) or _in_restart(s):
        return _low_cap(s)
    return _full_cap(s)


def _low_minutes_left(s):
    """Minutes still to give at the low dose: the later end of the two windows."""
    left = 0
    if _in_restart(s):
        left = RESTART_DAYS * DAY - s.restart_infused_min
    if _in_step(s) and STEP_DAYS * DAY - s.step_infused_min > left:
        left = STEP_DAYS * DAY - s.step_infused_min
    return left


def _note_cap(s):
    """The window remembers the highest cap in force in it (the daily guard)."""
    if _cap(s) > s.window_cap_ng:
        s.window_cap_ng = _cap(s)


def _table_rate(hours):
    """EXT-rates: the site's rate for a bag of this duration."""
    if hours == 24:
        return RATE_1D
    if hours == 48:
        return RATE_2D
    if hours == 72:
        return RATE_3D
    if hours == 96:
        return RATE_4D
    if hours == 168:
        return RATE_7D
    return 0


def _infused_ul(hours, minutes):
    """Volume given in `minutes` at the table rate, whole uL (EXT-rates)."""
    if hours == 24:
        return (RATE_1D * minutes) // HOUR
    if hours == 48:
        return (RATE_2D * minutes) // HOUR
    if hours == 72:
        return (RATE_3D * minutes) // HOUR
    if hours == 96:
        return (RATE_4D * minutes) // HOUR
    return (RATE_7D * minutes) // HOUR


def _drug_per_day(drug_ng, volume_ul, hours):
    """EXT-rates: the bag's concentration times the volume it infuses a day, rounded up."""
    if hours == 24:
        return (drug_ng * (RATE_1D * 24) + volume_ul - 1) // volume_ul
    if hours == 48:
        return (drug_ng * (RATE_2D * 24) + volume_ul - 1) // volume_ul
    if hours == 72:
        return (drug_ng * (RATE_3D * 24) + volume_ul - 1) // volume_ul
    if hours == 96:
        return (drug_ng * (RATE_4D * 24) + volume_ul - 1) // volume_ul
    return (drug_ng * (RATE_7D * 24) + volume_ul - 1) // volume_ul


def _room_limit_min(hours):
    """L2.6-bag-*: room-temperature life of the bag, infusion included."""
    if hours <= 48:
        return 48 * HOUR                # L2.6-bag-24-48
    if hours <= 96:
        return 4 * DAY                  # L2.6-bag-72-96
    return 7 * DAY                      # L2.6-bag-7d


def _fridge_limit_min(hours):
    if hours <= 48:
        return 8 * DAY                  # L2.6-bag-24-48
    return 14 * DAY                     # L2.6-bag-72-96, L2.6-bag-7d


def _break_min(s):
    """L2-cycle-42: 14 days; L2.2-cycle-84: 56 days after R/R cycles 6-9."""
    if s.indication == RELAPSED and s.cycle >= FIRST_CONTINUED_CYCLE:
        return LONG_BREAK_DAYS * DAY
    return SHORT_BREAK_DAYS * DAY


def _on_hold(s):
    return s.crs != 0 or s.icans != 0 or s.neuro != 0 or s.seizure != 0 or s.other != 0


def _interrupted(s):
    return s.patient == 1 and s.infusing == 0 and s.stopped_at_min >= 0


def _cycle_begun(s):
    return s.in_break == 0 and s.course_over == 0 and s.cycle_infused_min > 0


def _next_minute_ng(s):
    return (s.carry_ng + s.bag_ng_per_day) // DAY


# ---------------------------------------------------------------- what happens to the ghost state

def _interrupt(s, reason):
    """The motor stops: an interruption opens now (each with its own clock and its reason)."""
    if s.infusing == 1:
        s.infusing = 0
        s.stopped_at_min = s.clock_min
        s.stop_unknown = 0
        s.stop_reason = reason
        s.stop_for_reaction = 1 if reason == STOP_FOR_REACTION else 0
        s.cycle_goes_on = 0


def _take_off_bag(s):
    s.bag = 0
    s.bag_id = 0
    s.bag_ng_per_day = 0
    s.bag_hours = 0
    s.bag_volume_ul = 0
    s.bag_infused_min = 0
    s.bag_given_ng = 0
    s.bag_room_min = 0
    s.bag_low = 0
    s.booked_min = -1
    s.carry_ng = 0


def _discontinue(s, kind):
    _interrupt(s, STOP_FOR_REACTION)
    s.discontinued = 1
    s.discontinued_for = kind
    s.alarm_discontinued = 1


def _new_cycle(s, number):
    """A cycle begins (or the course is over): its first dose needs premedication and
    supervision (L2-premed, L2-hosp, L2-reinit-4h)."""
    s.ask_cycle = 0
    s.cycle_goes_on = 0
    if number > s.course_cycles:
        s.course_over = 1                                   # L2.x-course
        s.in_break = 0
        return
    s.cycle = number
    s.in_break = 0
    s.cycle_infused_min = 0
    s.cycle_given_ng = 0
    s.break_min = 0
    s.booked_min = -1
    s.premed_due = 1
    s.supervision_due = 1
    s.premed_at_min = -1
    s.supervision_given = 0


def _judge_interruption(s):
    """L2-reinit-4h at 4 hours (or unknown); L2.4-new-cycle past 7 days."""
    if not _interrupted(s):
        return
    off = s.clock_min - s.stopped_at_min
    if (off >= REINIT_HOURS * HOUR or s.stop_unknown == 1) and s.reinit_due == 0:
        s.reinit_due = 1                                    # L2-reinit-4h
        s.alarm_reinit = 1
        s.premed_due = 1                                    # L2-premed
        s.supervision_due = 1
        s.premed_at_min = -1
        s.supervision_given = 0
    if _cycle_begun(s):
        if off > NEW_CYCLE_DAYS * DAY:
            if s.stop_for_reaction == 1 or _on_hold(s):
                _new_cycle(s, s.cycle + 1)                  # L2.4-new-cycle: an adverse reaction
            elif s.cycle_goes_on == 0:
                s.ask_cycle = 1                             # L2.4-new-cycle: silent; ask
        elif s.stop_unknown == 1 and s.cycle_goes_on == 0:
            s.ask_cycle = 1                                 # how long it was cannot be known


def _spent(s):
    """What the minutes begun so far complete, judged when they have run."""
    if s.patient == 1 and s.in_break == 0 and s.course_over == 0 and s.cycle_infused_min >= INFUSION_DAYS * DAY:
        s.infusing = 0                                      # L2-cycle-42: 28 days given
        s.stopped_at_min = -1
        s.in_break = 1
        s.break_min = 0
        s.ask_cycle = 0
        s.cycle_goes_on = 0
        _take_off_bag(s)
        return
    if s.bag == 1 and (s.bag_infused_min >= s.bag_hours * HOUR or (s.bag_low == 1 and _low_minutes_left(s) == 0)):
        _interrupt(s, HALT_BAG_END)                         # L2.5-durations; a low-dose bag ends at the step
        _take_off_bag(s)
        s.alarm_bag_end = 1
        return
    if s.bag == 1 and (s.bag_room_min >= _room_limit_min(s.bag_hours)
                       or _infused_ul(s.bag_hours, s.bag_infused_min) >= s.bag_volume_ul):
        _interrupt(s, HALT_BAG_EXPIRED)                     # L2.6-bag-*: storage includes infusion
        _take_off_bag(s)
        s.alarm_bag_expired = 1


def _begin_minute(s):
    """The next minute's drug is booked before it runs: never above the window's cap
    (L2-dose-28), never more than the bag holds (EXT-rates)."""
    owed = s.carry_ng + s.bag_ng_per_day
    ng = owed // DAY
    if s.window_ng + ng > s.window_cap_ng:
        _interrupt(s, HALT_CAP)                             # L2-dose-28: the daily guard
        s.alarm_cap = 1
        return
    if _infused_ul(s.bag_hours, s.bag_infused_min + 1) > s.bag_volume_ul:
        _interrupt(s, HALT_BAG_END)                         # EXT-rates: the bag is empty
        _take_off_bag(s)
        s.alarm_bag_end = 1
        return
    s.carry_ng = owed - ng * DAY
    s.window_ng = s.window_ng + ng
    s.bag_given_ng = s.bag_given_ng + ng
    s.cycle_given_ng = min(s.cycle_given_ng + ng, CLOCK_TOP)
    s.booked_min = s.clock_min
    s.bag_infused_min = s.bag_infused_min + 1
    s.cycle_infused_min = s.cycle_infused_min + 1
    if _in_step(s):
        s.step_infused_min = s.step_infused_min + 1         # L2.2-step
    if _in_restart(s):
        s.restart_infused_min = s.restart_infused_min + 1   # L2.4-restart-9


def _time_limits(s):
    """Table 4: a reaction that has not resolved in time is permanent, from its own onset."""
    if s.discontinued == 1:
        return
    late_icans = s.icans == 3 and s.clock_min - s.icans_onset_min > NEURO3_LIMIT_DAYS * DAY
    late_neuro = s.neuro == 3 and s.clock_min - s.neuro_onset_min > NEURO3_LIMIT_DAYS * DAY
    late_seizure = s.seizure == 3 and s.clock_min - s.seizure_onset_min > NEURO3_LIMIT_DAYS * DAY
    late_other = s.other >= 3 and s.clock_min - s.other_onset_min > OTHER3_LIMIT_DAYS * DAY
    # several late at once: the record names one, in the protocol's order of the kinds
    if late_icans:
        _discontinue(s, ICANS)                              # L2.4-neuro-3
    elif late_neuro:
        _discontinue(s, NEUROLOGIC)                         # L2.4-neuro-3
    elif late_seizure:
        _discontinue(s, SEIZURE)                            # L2.4-neuro-3
    elif late_other:
        _discontinue(s, OTHER)                              # L2.4-other-3


# ---------------------------------------------------------------- the inputs

def tick(s):
    """A minute of trusted clock."""
    s.clock_min = min(s.clock_min + 1, CLOCK_TOP)
    s.window_min = s.window_min + 1
    if s.window_min >= DAY:
        s.window_min = 0
        s.window_ng = 0
        s.window_cap_ng = 0
    _note_cap(s)
    if s.bag == 1:
        s.bag_room_min = min(s.bag_room_min + 1, CLOCK_TOP)
    had_break = s.in_break == 1
    _spent(s)
    if s.infusing == 1:
        if s.bag_ng_per_day > _cap(s):                      # (never infusing discontinued or faulted)
            _interrupt(s, HALT_CAP)                         # L2-dose-28, L2.2-step
            s.alarm_cap = 1
        else:
            _begin_minute(s)
            _note_cap(s)
    elif had_break:
        s.break_min = min(s.break_min + 1, CLOCK_TOP)
        if s.break_min >= _break_min(s):
            _new_cycle(s, s.cycle + 1)                      # L2-cycle-42, L2.2-cycle-84
    _judge_interruption(s)
    _time_limits(s)
    return ACCEPT


def _body_answer(weight_g, bsa_cm2):
    if weight_g < WEIGHT_LOW_G or weight_g > WEIGHT_HIGH_G:
        return BAD_WEIGHT                                   # L2-weight-45
    if weight_g < FIXED_DOSE_FROM_G and (bsa_cm2 < BSA_LOW_CM2 or bsa_cm2 > BSA_HIGH_CM2):
        return BAD_BSA                                      # L2-dose-28
    return ACCEPT


def _take_body(s, weight_g, bsa_cm2):
    s.weight_g = weight_g
    s.bsa_cm2 = 0
    if weight_g < FIXED_DOSE_FROM_G:
        s.bsa_cm2 = bsa_cm2                                 # L2-weight-45: BSA-based


def setup(s, patient_id, indication, weight_g, bsa_cm2, course_cycles):
    if s.fault == 1:
        return FAULTED
    if s.patient == 1:
        return NOT_NOW
    if indication < MRD or indication > CONSOLIDATION:
        return NO_INDICATION                                # L1.1, L1.2, L1.3
    body = _body_answer(weight_g, bsa_cm2)
    if body != ACCEPT:
        return body
    if patient_id < 1 or patient_id > CLOCK_TOP:
        return BAD_ARGUMENT
    if indication == CONSOLIDATION and (course_cycles < 1 or course_cycles > SITE_CYCLES_MAX):
        return BAD_ARGUMENT                                 # L2.3-course: the site's count
    if indication != CONSOLIDATION and course_cycles != 0:
        return BAD_ARGUMENT                                 # L2.1-course, L2.2-course
    s.patient = 1
    s.patient_id = patient_id
    s.indication = indication
    _take_body(s, weight_g, bsa_cm2)
    s.course_cycles = course_cycles
    if indication == MRD:
        s.course_cycles = MRD_CYCLES                        # L2.1-course
    if indication == RELAPSED:
        s.course_cycles = RELAPSED_CYCLES                   # L2.2-course
    s.step_infused_min = 0
    s.step_premed = 0
    s.restart_infused_min = RESTART_DAYS * DAY
    _new_cycle(s, 1)
    _note_cap(s)
    return ACCEPT


def _same_bag_again(s, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h):
    """The hung bag's order sent again (a lost reply): nothing changes (L2.6-bag-*)."""
    return (s.bag == 1 and bag_id == s.bag_id and duration_h == s.bag_hours and volume_ul == s.bag_volume_ul
            and rate_ul_per_h == _table_rate(duration_h)
            and _drug_per_day(drug_ng, volume_ul, duration_h) == s.bag_ng_per_day)


def _storage_answer(duration_h, room_min, fridge_min):
    if room_min < 0 or fridge_min < 0:
        return STORAGE_EXCEEDED
    if fridge_min > _fridge_limit_min(duration_h) or room_min + duration_h * HOUR > _room_limit_min(duration_h):
        return STORAGE_EXCEEDED                             # L2.6-bag-*
    return ACCEPT


def _bag_answer(s, patient_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative, room_min, fridge_min):
    if s.discontinued == 1:
        return DISCONTINUED
    if s.patient == 0 or s.infusing == 1:
        return NOT_NOW
    if patient_id != s.patient_id:
        return OTHER_PATIENT                                # L2.5-errors
    if s.course_over == 1:
        return COURSE_OVER                                  # L2.x-course: no bag after the last cycle
    if s.in_break == 1:
        return TREATMENT_FREE                               # L2-cycle-42, L2.2-cycle-84: none in the break
    if _table_rate(duration_h) == 0:
        return BAD_DURATION                                 # L2.5-durations
    if preservative < 0 or preservative > 1:
        return BAD_ARGUMENT
    if (preservative == 1 and duration_h < 72) or (preservative == 0 and duration_h >= 72):
        return BAD_PRESERVATIVE                             # L2.5-durations: with preservative from 72 h
    if preservative == 1 and s.weight_g < PRESERVATIVE_FROM_G:
        return UNDER_MIN_WEIGHT                             # L2.5-min-weight
    if volume_ul < VOLUME_LOW_UL or volume_ul > VOLUME_HIGH_UL or drug_ng < 1 or drug_ng > DRUG_HIGH_NG:
        return IMPLAUSIBLE_BAG                              # L2.5-errors
    if rate_ul_per_h != _table_rate(duration_h) or _infused_ul(duration_h, duration_h * HOUR) > volume_ul:
        return BAD_RATE                                     # EXT-rates
    if _drug_per_day(drug_ng, volume_ul, duration_h) > _cap(s):
        return OVER_CAP                                     # L2-dose-28, L2.2-step, L2.4-restart-9
    if s.cycle_infused_min + duration_h * HOUR > INFUSION_DAYS * DAY:
        return PAST_DAY_28                                  # L2-cycle-42
    return _storage_answer(duration_h, room_min, fridge_min)


def bag(s, patient_id, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative, room_min, fridge_min):
    if (s.discontinued == 0 and s.patient == 1 and s.infusing == 0 and patient_id == s.patient_id
            and _same_bag_again(s, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h)):
        return ACCEPT
    answer = _bag_answer(s, patient_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative,
                         room_min, fridge_min)
    if answer != ACCEPT:
        return answer
    if bag_id < 1 or bag_id > CLOCK_TOP:
        return BAD_ARGUMENT
    if bag_id <= s.last_bag_id:
        return BAG_HUNG_BEFORE                              # L2.6-bag-*: its clocks cannot restart
    _take_off_bag(s)
    s.bag = 1
    s.bag_id = bag_id
    s.last_bag_id = bag_id
    s.bag_ng_per_day = _drug_per_day(drug_ng, volume_ul, duration_h)
    s.bag_hours = duration_h
    s.bag_volume_ul = volume_ul
    s.bag_room_min = room_min
    if _low_minutes_left(s) > 0:
        s.bag_low = 1                                       # L2.2-step, L2.4-restart-9
    return ACCEPT


def remove_bag(s):
    if s.patient == 0 or s.infusing == 1 or s.bag == 0:
        return NOT_NOW
    _take_off_bag(s)
    return ACCEPT


def _premed_counts(s):
    """L2-premed: given since it was due, within the hour before now."""
    return s.premed_at_min >= 0 and s.clock_min - s.premed_at_min <= PREMED_HOURS * HOUR


def start(s):
    if s.discontinued == 1:
        return DISCONTINUED                                 # Table 4
    if s.fault == 1:
        return FAULTED
    if s.patient == 0 or s.infusing == 1:
        return NOT_NOW
    if s.asking_other4 == 1:
        return ASK_CLINICIAN                                # L2.4-other-4
    if _on_hold(s):
        return WITHHELD                                     # L2.4-*
    if s.overdose_at_min >= 0 and s.clock_min - s.overdose_at_min < OVERDOSE_HOURS * HOUR:
        return OVERDOSE_WAIT                                # EXT-overdose-12h
    if s.course_over == 1:
        return COURSE_OVER                                  # L2.x-course
    if s.in_break == 1:
        return TREATMENT_FREE                               # L2-cycle-42, L2.2-cycle-84
    if s.bag == 0 or s.bag_infused_min >= s.bag_hours * HOUR:
        return NO_BAG
    if s.cycle_infused_min >= INFUSION_DAYS * DAY:
        return PAST_DAY_28                                  # L2-cycle-42
    _judge_interruption(s)
    if s.ask_cycle == 1:
        return ASK_CLINICIAN                                # L2.4-new-cycle
    _note_cap(s)
    premed = _premed_counts(s)
    if (s.premed_due == 1 and not premed) or (s.supervision_due == 1 and s.supervision_given == 0):
        return ACK_MISSING                                  # L2-reinit-4h, L2-premed
    if s.bag_ng_per_day > _cap(s):
        return OVER_CAP                                     # L2.2-step, L2.4-restart-9
    resumes = s.booked_min == s.clock_min                   # the minute begun is given first
    if not resumes and s.window_ng + _next_minute_ng(s) > s.window_cap_ng:
        return OVER_CAP                                     # L2-dose-28: the daily guard
    if not resumes and _infused_ul(s.bag_hours, s.bag_infused_min + 1) > s.bag_volume_ul:
        return NO_BAG                                       # EXT-rates
    if s.indication == RELAPSED and s.step_premed == 0 and s.bag_ng_per_day > _low_cap(s):
        if not premed:
            return STEP_PREMED_MISSING                      # L2-premed before a step up
        s.step_premed = 1
    s.infusing = 1
    s.dose_given_ng = s.bag_ng_per_day
    if not resumes:
        _begin_minute(s)
        _note_cap(s)
    s.stopped_at_min = -1
    s.stop_unknown = 0
    s.stop_reason = 0
    s.stop_for_reaction = 0
    s.cycle_goes_on = 0
    s.reinit_due = 0
    s.alarm_reinit = 0
    s.premed_due = 0
    s.supervision_due = 0
    s.premed_at_min = -1
    s.supervision_given = 0
    return ACCEPT


def stop(s, reason):
    if reason < 1 or reason > STOP_REASON_MAX:
        return BAD_ARGUMENT
    if s.infusing == 0:
        return NOT_NOW
    _interrupt(s, reason)
    return ACCEPT


def ack(s, what):
    if s.patient == 0:
        return NOT_NOW
    if what == PREMEDICATION:
        s.premed_at_min = s.clock_min                       # L2-premed: counts for an hour
        return ACCEPT
    if what == SUPERVISION:
        s.supervision_given = 1
        return ACCEPT
    return BAD_ARGUMENT


def ack_alarm(s, bits):
    """The nurse silences alarms; no therapy change. Those whose cause lasts stay."""
    if bits < 0 or bits > 255:
        return BAD_ARGUMENT
    if (bits & BIT_CAP) != 0:
        s.alarm_cap = 0
    if (bits & BIT_BAG_END) != 0:
        s.alarm_bag_end = 0
    if (bits & BIT_BAG_EXPIRED) != 0:
        s.alarm_bag_expired = 0
    if (bits & BIT_POWER) != 0:
        s.alarm_power = 0
    if (bits & BIT_FAULT) != 0 and s.fault == 0:
        s.alarm_fault = 0
    if (bits & BIT_REINIT) != 0 and s.reinit_due == 0:
        s.alarm_reinit = 0
    if (bits & BIT_DISCONTINUED) != 0 and s.discontinued == 0:
        s.alarm_discontinued = 0
    return ACCEPT


def _raise_hold(s, kind, grade):
    """A kind entered again while open is the same reaction: its clocks never move."""
    if kind == CRS:
        s.crs = 3
    elif kind == ICANS:
        if s.icans == 0:
            s.icans_onset_min = s.clock_min
        if grade == 3 and s.icans != 3:
            s.icans_g3_min = s.clock_min
        if grade > s.icans:
            s.icans = grade
    elif kind == NEUROLOGIC:
        if s.neuro == 0:
            s.neuro_onset_min = s.clock_min
            s.neuro_g3_min = s.clock_min
        s.neuro = 3
    elif kind == SEIZURE:
        if s.seizure == 0:
            s.seizure_onset_min = s.clock_min
            s.seizure_g3_min = s.clock_min
        s.seizure = 3
    else:
        if s.other == 0:
            s.other_onset_min = s.clock_min
        if grade > s.other:
            s.other = grade


def reaction(s, kind, grade, scale):
    """Table 4, row by row."""
    if s.patient == 0:
        return NOT_NOW
    if kind < CRS or kind > OTHER or grade < 1 or grade > 4:
        return BAD_ARGUMENT
    if not (scale == CTCAE or (scale == ASTCT and kind == ICANS)):
        return BAD_SCALE                                    # L2.4-grading
    neurologic = kind == NEUROLOGIC or kind == ICANS or kind == SEIZURE
    at_low_dose = s.dose_given_ng > 0 and s.dose_given_ng <= _low_cap(s)
    if kind == SEIZURE:
        s.seizures = min(s.seizures + 1, 2)
        if s.seizures == 2:
            _discontinue(s, SEIZURE)                        # L2.4-seizure: more than one
            return ACCEPT
    if grade == 4 and kind != OTHER:
        _discontinue(s, kind)                               # L2.4-crs-4, L2.4-neuro-4
        return ACCEPT
    if neurologic and grade == 3 and at_low_dose:
        _discontinue(s, kind)                               # L2.4-neuro-3: occurred at 9 mcg/day
        return ACCEPT
    if grade <= 2 and not (kind == ICANS and grade == 2):
        return ACCEPT                                       # Table 4 asks nothing of the pump
    _interrupt(s, STOP_FOR_REACTION)
    s.stop_for_reaction = 1                                 # L2.4-new-cycle
    if kind == OTHER and grade == 4:
        s.asking_other4 = 1                                 # L2.4-other-4: the pump asks
    _raise_hold(s, kind, grade)
    _judge_interruption(s)
    return ACCEPT


def decide(s, discontinue):
    if s.asking_other4 == 0:
        return NOT_NOW
    if discontinue < 0 or discontinue > 1:
        return BAD_ARGUMENT
    s.asking_other4 = 0
    if discontinue == 1:
        _discontinue(s, OTHER)                              # L2.4-other-4
    return ACCEPT


def _grade_of(s, kind):
    if kind == CRS:
        return s.crs
    if kind == ICANS:
        return s.icans
    if kind == NEUROLOGIC:
        return s.neuro
    if kind == SEIZURE:
        return s.seizure
    return s.other


def _neuro3_answer(s, onset_min, g3_min):
    """L2.4-neuro-3: at least 3 days withheld; more than 7 days to resolve is permanent."""
    if s.clock_min - g3_min < NEURO3_FLOOR_DAYS * DAY:
        return WITHHELD
    if s.clock_min - onset_min > NEURO3_LIMIT_DAYS * DAY:
        return DISCONTINUED
    return ACCEPT


def _resolution(s, kind):
    if kind == ICANS and s.icans == 3:
        return _neuro3_answer(s, s.icans_onset_min, s.icans_g3_min)
    if kind == NEUROLOGIC:
        return _neuro3_answer(s, s.neuro_onset_min, s.neuro_g3_min)
    if kind == SEIZURE:
        return _neuro3_answer(s, s.seizure_onset_min, s.seizure_g3_min)
    if kind == OTHER and s.asking_other4 == 1:
        return ASK_CLINICIAN                                # L2.4-other-4: decided first
    if kind == OTHER and s.clock_min - s.other_onset_min > OTHER3_LIMIT_DAYS * DAY:
        return DISCONTINUED                                 # L2.4-other-3
    return ACCEPT                                           # CRS 3, ICANS 2: when resolved


def _close(s, kind):
    if kind == CRS:
        s.crs = 0
    elif kind == ICANS:
        s.icans = 0
    elif kind == NEUROLOGIC:
        s.neuro = 0
    elif kind == SEIZURE:
        s.seizure = 0
    else:
        s.other = 0


def resolved(s, kind):
    if kind < CRS or kind > OTHER:
        return BAD_ARGUMENT
    if s.discontinued == 1 or _grade_of(s, kind) == 0:
        return NOT_NOW
    answer = _resolution(s, kind)
    if answer == DISCONTINUED:
        _discontinue(s, kind)
        return DISCONTINUED
    if answer != ACCEPT:
        return answer
    _close(s, kind)
    s.restart_infused_min = 0                               # L2.4-restart-9: 7 days at 9 from now
    if s.indication == RELAPSED:
        s.step_premed = 0                                   # L2-premed: the escalation is a step up
    _note_cap(s)
    return ACCEPT


def cycle_decision(s, new_cycle):
    if s.ask_cycle == 0:
        return NOT_NOW
    if new_cycle < 0 or new_cycle > 1:
        return BAD_ARGUMENT
    s.ask_cycle = 0
    if new_cycle == 1:
        _new_cycle(s, s.cycle + 1)                          # L2.4-new-cycle, by decision
    else:
        s.cycle_goes_on = 1
    return ACCEPT


def update_patient(s, weight_g, bsa_cm2):
    if s.fault == 1:
        return FAULTED
    if s.patient == 0 or s.infusing == 1:
        return NOT_NOW
    body = _body_answer(weight_g, bsa_cm2)
    if body != ACCEPT:
        return body
    _take_body(s, weight_g, bsa_cm2)                        # L2-dose-28: the current values
    _note_cap(s)
    if s.bag == 1 and (s.bag_ng_per_day > _cap(s) or (s.bag_hours >= 72 and weight_g < PRESERVATIVE_FROM_G)):
        _take_off_bag(s)                                    # L2-dose-28, L2.5-min-weight
    return ACCEPT


def end_therapy(s):
    """The therapy ends; the next set-up is a new patient. Only the clock goes on."""
    if s.fault == 1:
        return FAULTED
    if s.patient == 0 or s.infusing == 1:
        return NOT_NOW
    s.patient = 0
    s.patient_id = 0
    s.indication = 0
    s.weight_g = 0
    s.bsa_cm2 = 0
    s.course_cycles = 0
    s.cycle = 0
    s.in_break = 0
    s.course_over = 0
    s.cycle_infused_min = 0
    s.break_min = 0
    s.step_infused_min = 0
    s.step_premed = 0
    s.restart_infused_min = RESTART_DAYS * DAY
    s.premed_due = 0
    s.supervision_due = 0
    s.premed_at_min = -1
    s.supervision_given = 0
    s.stopped_at_min = -1
    s.stop_reason = 0
    s.stop_for_reaction = 0
    s.stop_unknown = 0
    s.reinit_due = 0
    s.ask_cycle = 0
    s.cycle_goes_on = 0
    s.crs = 0
    s.icans = 0
    s.icans_onset_min = 0
    s.icans_g3_min = 0
    s.neuro = 0
    s.neuro_onset_min = 0
    s.neuro_g3_min = 0
    s.seizure = 0
    s.seizure_onset_min = 0
    s.seizure_g3_min = 0
    s.other = 0
    s.other_onset_min = 0
    s.dose_given_ng = 0
    s.seizures = 0
    s.asking_other4 = 0
    s.discontinued = 0
    s.discontinued_for = 0
    s.cycle_given_ng = 0
    s.overdose_at_min = -1
    _take_off_bag(s)
    s.last_bag_id = 0
    s.window_min = 0
    s.window_ng = 0
    s.window_cap_ng = 0
    s.alarm_cap = 0
    s.alarm_bag_end = 0
    s.alarm_bag_expired = 0
    s.alarm_power = 0
    s.alarm_fault = 0
    s.alarm_reinit = 0
    s.alarm_discontinued = 0
    return ACCEPT


def overdose(s):
    if s.patient == 0:
        return NOT_NOW
    _interrupt(s, HALT_OVERDOSE)
    s.overdose_at_min = s.clock_min                         # EXT-overdose-12h
    return ACCEPT


def flush(s):
    if s.patient == 0 and s.bag == 0:
        return NOT_NOW
    return NO_FLUSH                                         # EXT-no-flush


def _time_unknown(s):
    """Time that cannot be known: an open interruption becomes of unknown length (4 h or
    more, L2-reinit-4h), and a hung bag's storage cannot be shown (L2.6-bag-*)."""
    if s.stopped_at_min >= 0:
        s.stop_unknown = 1
    if s.bag == 1:
        _take_off_bag(s)
        s.alarm_bag_expired = 1


def power_up(s, outage_min):
    if s.infusing == 1:
        s.alarm_power = 1
    _interrupt(s, HALT_POWER)
    if outage_min < 0 or outage_min > LONGEST_OUTAGE_MIN:
        _time_unknown(s)
        _judge_interruption(s)
        if outage_min < -1:
            return BAD_ARGUMENT
        return ACCEPT
    s.clock_min = min(s.clock_min + outage_min, CLOCK_TOP)
    if s.bag == 1:
        s.bag_room_min = min(s.bag_room_min + outage_min, CLOCK_TOP)
    if s.in_break == 1:
        s.break_min = min(s.break_min + outage_min, CLOCK_TOP)
    if s.window_min + outage_min >= DAY:
        s.window_min = 0
        s.window_ng = 0
        s.window_cap_ng = 0
    else:
        s.window_min = s.window_min + outage_min
    _spent(s)
    _judge_interruption(s)
    _time_limits(s)
    return ACCEPT


def _latch(s):
    _interrupt(s, HALT_FAULT)
    s.fault = 1
    s.alarm_fault = 1
    if s.stopped_at_min >= 0:
        s.stop_unknown = 1
    _judge_interruption(s)


def fault(s):
    _latch(s)
    return ACCEPT


def clock_fault(s):
    if s.fault == 1 and s.bag == 0:
        return FAULTED
    _latch(s)
    if s.bag == 1:
        _take_off_bag(s)
        s.alarm_bag_expired = 1                             # L2.6-bag-*: its storage is unknown
    return ACCEPT


def clear_fault(s):
    if s.fault == 0:
        return NOT_NOW
    s.fault = 0
    s.alarm_fault = 0
    return ACCEPT


def invariant(s):
    """What the observer's own bookkeeping keeps true (proved inductive with the product)."""
    return (
        (s.in_break == 0 or s.course_over == 0)             # a course over has no break left
        and (s.patient == 0 or (s.indication == MRD and s.course_cycles == MRD_CYCLES)
             or (s.indication == RELAPSED and s.course_cycles == RELAPSED_CYCLES)
             or (s.indication == CONSOLIDATION and s.course_cycles >= 1 and s.course_cycles <= SITE_CYCLES_MAX))
        and (s.patient == 0 or (s.cycle >= 1 and s.cycle <= s.course_cycles))
        and (s.course_over == 0 or s.cycle == s.course_cycles)   # the course ends after its last cycle
        and (s.patient == 1 or (s.infusing == 0 and s.bag == 0 and s.in_break == 0 and s.course_over == 0
                                and s.weight_g == 0 and s.bsa_cm2 == 0 and s.indication == 0
                                and s.restart_infused_min == RESTART_DAYS * DAY))
        and (s.bag == 1 or (s.bag_low == 0 and s.bag_hours == 0 and s.bag_infused_min == 0
                            and s.booked_min == -1 and s.carry_ng == 0))
        and (s.infusing == 0 or (s.bag == 1 and s.fault == 0 and s.discontinued == 0 and s.in_break == 0
                                 and s.course_over == 0 and s.stopped_at_min == -1 and not _on_hold(s)))
    )
