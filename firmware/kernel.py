"""Safety kernel of the BLINCYTO pump companion: what the motor may do.

Written in the verifiable subset of DESIGN.md, because verify/ reads this very file and
proves its properties for every input sequence:
- integers and booleans only; units are in the names (ng, ul, min, g, cm2);
- the state is the fixed set of fields of `State`, each with its range in a `# [lo, hi]` comment;
- public functions are the entry points (a command, the one-minute tick, power-up); each takes
  the state and integer inputs, assigns fields, branches with if/elif/else and returns a status;
- helpers start with `_` and are inlined by the verifier; no loops, no recursion;
- arithmetic is linear: a constant times a field or an input, floor division by a constant;
  the one exception is where a bag order is accepted (`_bag_ng_per_day`): its concentration
  (drug / bag volume) is computed once there and stored as a daily rate (DESIGN.md);
- no allocation on the tick path (small ints and attribute stores only).
Every check names its clause ID of LABEL.md; verify/properties.py names the same IDs.

Booking: the drug of each minute is booked before the motor runs it, and the motor runs every
minute that was booked. `start` books the first minute (the board's minute grid restarts at
START, pump.Controller); each `tick` first ends what the minute that has just run completed
(the cycle's 28 days, the bag's duration, its room-temperature limit or its volume), then
books the next one. So the record is never below what ran, and a bag's last minute is run.

The clock of the kernel is its own minute counter: the board calls `tick` once per elapsed
minute of a trustworthy clock, reports outages through `power_up`, and a clock it can no
longer trust (backwards, or a forward jump) through `clock_fault`. Time that cannot be known is
never counted as minutes; it makes the open interruption unknown (4 h or more) instead.
"""

# ---- status codes (firmware/codes.py maps each to its name and clause) ----
OK = 0
E_STATE = 1             # command not valid in this state
E_INDICATION = 2        # L1.1/L1.2/L1.3
E_WEIGHT = 3            # L2-weight-45 (weight out of range)
E_BSA = 4               # L2-dose-28 (BSA out of range)
E_PATIENT = 5           # L2.5-errors (bag for another patient)
E_DURATION = 6          # L2.5-durations
E_PRESERVATIVE = 7      # L2.5-durations (preservative does not match duration)
E_MIN_WEIGHT = 8        # L2.5-min-weight
E_DOSE_CAP = 9          # L2-dose-28, L2.2-step, L2.4-restart-9
E_STORAGE = 10          # L2.6-bag-*
E_VOLUME = 11           # L2.5-errors (volume or drug out of range)
E_NO_BAG = 12           # no bag loaded
E_REINIT = 13           # L2-reinit-4h, L2-premed: acknowledgements missing
E_STEP_PREMED = 14      # L2-premed before the step dose (L2.2-step)
E_FREE_INTERVAL = 15    # L2-cycle-42, L2.2-cycle-84
E_LOCKED = 16           # L2.4-crs-4, L2.4-seizure, L2.4-neuro-3, L2.4-neuro-4, L2.4-other-3
E_WITHHOLD = 17         # L2.4-neuro-3, L2.4-other-3: reaction not resolved
E_OVERDOSE_12H = 18     # EXT-overdose-12h
E_NO_FLUSH = 19         # EXT-no-flush
E_DECISION = 20         # L2.4-other-4: clinician decision pending
E_COURSE_DONE = 21      # L2.1-course, L2.2-course, L2.3-course
E_ARG = 22              # an input outside its documented range
E_FAULT = 23            # record or clock fault: stopped until cleared
E_CYCLE_END = 24        # L2-cycle-42: the bag would run past the cycle's 28 infusion days
E_BAG_ID = 25           # L2.6-bag-*, L2.5-errors: that bag was hung already (its clocks cannot restart)
E_RATE = 26             # EXT-rates: the labelled rate is not the table's, or rate x duration exceeds the bag
E_SCALE = 27            # L2.4-grading: the grade's scale is not one the label uses for that reaction

# ---- modes ----
MODE_NO_PATIENT = 0
MODE_STOPPED = 1
MODE_RUNNING = 2

# ---- phases of a cycle ----
PHASE_INFUSION = 0      # up to 28 infusion days (L2-cycle-42)
PHASE_FREE = 1          # treatment-free interval (L2-cycle-42, L2.2-cycle-84)
PHASE_DONE = 2          # course complete (L2.1-course, L2.2-course, L2.3-course)

# ---- indications (L1.1, L1.2, L1.3) ----
IND_MRD = 1
IND_RR = 2
IND_CONS = 3

# ---- adverse reactions (Table 4) ----
RX_NONE = 0
RX_CRS = 1
RX_NEURO = 2
RX_ICANS = 3
RX_SEIZURE = 4
RX_OTHER = 5

# grading scales (L2.4-grading)
SCALE_CTCAE = 1         # Table 4: grades based on CTCAE
SCALE_ASTCT = 2         # ICANS only: the ASTCT consensus grade

# ---- acknowledgements ----
ACK_PREMED = 1
ACK_SUPERVISION = 2

# ---- interruption reasons ----
STOP_CLINICIAN = 1
STOP_BAG_CHANGE = 2
STOP_REACTION = 3
STOP_OVERDOSE = 4
STOP_BAG_END = 5
STOP_BAG_EXPIRED = 6
STOP_CAP = 7
STOP_POWER = 8
STOP_FAULT = 9
STOP_CYCLE_END = 10
STOP_ALARM = 11

# ---- alarms (bit mask) ----
AL_CAP = 1              # the cap guard stopped the motor (never expected)
AL_BAG_END = 2
AL_BAG_EXPIRED = 4
AL_POWER = 8            # power was lost while infusing
AL_FAULT = 16           # record or clock fault
AL_REINIT = 32          # interruption of 4 h or more: re-initiation needed
AL_LOCKED = 64
AL_LINE = 128           # occlusion, air, door: reported by the board

# ---- label numbers in kernel units ----
MIN_PER_DAY = 1440
MIN_PER_H = 60
CAP_FULL_NG_PER_DAY = 28000         # L2-dose-28
CAP_STEP_NG_PER_DAY = 9000          # L2.2-step, L2.4-restart-9
WEIGHT_FIXED_G = 45000              # L2-weight-45
WEIGHT_MIN_G = 500                  # plausibility bound (L2-weight-45)
WEIGHT_MAX_G = 300000
WEIGHT_PRESERVATIVE_MIN_G = 5400    # L2.5-min-weight
BSA_MIN_CM2 = 500                   # 0.05 m2 (L2-dose-28)
BSA_MAX_CM2 = 35000                 # 3.5 m2
CYCLE_INFUSION_MIN = 40320          # 28 days (L2-cycle-42)
FREE_SHORT_MIN = 20160              # 14 days (L2-cycle-42)
FREE_LONG_MIN = 80640               # 56 days (L2.2-cycle-84)
STEP_WINDOW_MIN = 10080             # 7 days at the step dose (L2.2-step)
RESTART_LOW_MIN = 10080             # 7 days at 9 mcg/day after a restart (L2.4-restart-9)
REINIT_MIN = 240                    # 4 h (L2-reinit-4h)
PREMED_WINDOW_MIN = 60              # L2-premed: a premedication counts if given within 1 hour before
                                    # the start it authorises (a site may narrow it, never widen it)
NEW_CYCLE_MIN = 10080               # more than 7 days starts a new cycle (L2.4-new-cycle)
OVERDOSE_WAIT_MIN = 720             # 12 h (EXT-overdose-12h)
NEURO3_MIN_WITHHOLD_MIN = 4320      # at least 3 days (L2.4-neuro-3)
NEURO3_MAX_RESOLVE_MIN = 10080      # more than 7 days: permanent (L2.4-neuro-3)
OTHER3_MAX_RESOLVE_MIN = 20160      # more than 14 days: permanent (L2.4-other-3)
ROOM_24_48_MIN = 2880               # 48 h at room temperature (L2.6-bag-24-48)
FRIDGE_24_48_MIN = 11520            # 8 days refrigerated (L2.6-bag-24-48)
ROOM_72_96_MIN = 5760               # 4 days (L2.6-bag-72-96)
FRIDGE_72_96_MIN = 20160            # 14 days (L2.6-bag-72-96)
ROOM_7D_MIN = 10080                 # 7 days (L2.6-bag-7d)
FRIDGE_7D_MIN = 20160               # 14 days (L2.6-bag-7d)
BAG_VOLUME_MIN_UL = 10000           # 10 mL (L2.5-errors: plausibility)
BAG_VOLUME_MAX_UL = 1000000         # 1 L
BAG_DRUG_MAX_NG = 392000            # twice 7 days at 28 mcg/day: overfill included, no bag holds
                                    # more (L2.5-errors: plausibility; the daily dose is the check)
OUTAGE_MAX_MIN = 5256000            # 10 years: longer is not a trustworthy clock
MAX_CYCLES_MRD = 4                  # L2.1-course
MAX_CYCLES_RR = 9                   # L2.2-course
CONS_CYCLES_MAX = 9                 # L2.3-course: the site's count, given at set-up, is 1..9 (the
                                    # seed gives no number; 9 is the longest course the label knows)

# ---- site settings (EXT-rates): the infusion rate of each bag duration, uL/h ----
# A prepared bag holds more than it infuses (the overfill primes the line); it runs at the rate
# on its pharmacy label, which must be this table's. The 72 h, 96 h and 7-day rates changed
# between label revisions: a site changes them here, and the proofs are run again on the build.
RATE_24H_UL_PER_H = 10000           # 10 mL/h (240 mL infused)
RATE_48H_UL_PER_H = 5000            # 5 mL/h (240 mL infused)
RATE_72H_UL_PER_H = 1800            # 1.8 mL/h
RATE_96H_UL_PER_H = 1800            # 1.8 mL/h
RATE_7D_UL_PER_H = 600              # 0.6 mL/h
RR_FIRST_CONTINUED_CYCLE = 6        # L2.2-cycle-84: cycles 6-9 have 56 free days
COUNTER_MAX = 1000000000            # totals saturate here (below MicroPython's small-int limit)


class State:
    """All the kernel knows. Every field is an int; ranges are checked by verify/."""

    def __init__(self):
        # -- mode and clock --
        self.mode = 0               # [0, 2] MODE_*
        self.now_min = 0            # [0, 1000000000] kernel minutes since first start
        self.fault = 0              # [0, 1] record or clock fault latched until cleared
        self.alarm = 0              # [0, 255] AL_* bits, cleared by ack_alarm
        self.motor_ul_per_h = 0     # [0, 41666] commanded flow; 0 unless running
        # -- patient (L2-weight-45, L2-dose-28) --
        self.patient_id = 0         # [0, 1000000000]
        self.indication = 0         # [0, 3] IND_*
        self.weight_g = 0           # [0, 300000]
        self.bsa_cm2 = 0            # [0, 35000]
        self.cap_full_ng_per_day = 0    # [0, 28000] L2-dose-28
        self.cap_low_ng_per_day = 0     # [0, 9000] L2.2-step, L2.4-restart-9
        self.cap_ng_per_day = 0         # [0, 28000] cap in force now
        # -- course and cycle (L2-cycle-42, L2.2-cycle-84) --
        self.cycle = 0              # [0, 9]
        self.max_cycles = 0         # [0, 9] the course's cycles (L2.1-course, L2.2-course; L2.3-course: the site's)
        self.phase = 0              # [0, 2] PHASE_*
        self.cycle_run_min = 0      # [0, 40320] infusion minutes in this cycle
        self.free_min = 0           # [0, 1000000000] minutes into the treatment-free interval
        self.free_len_min = 0       # [0, 80640] length of this cycle's treatment-free interval
        self.step_run_min = 0       # [0, 10080] R/R minutes infused in the step window
        self.step_premed_done = 0   # [0, 1] premedication before the current step up given (R/R:
                                    # cycle 1 day 8, and each escalation after a restart, L2-premed)
        self.low_left_min = 0       # [0, 10080] infusion minutes left at the restart dose
        self.need_premed = 0        # [0, 1] premedication to acknowledge before the next start
        self.need_supervision = 0   # [0, 1] supervision to acknowledge before the next start
        self.premed_acked = 0       # [0, 1]
        self.premed_ack_min = -1    # [-1, 1000000000] when it was acknowledged (L2-premed: within the hour)
        self.supervision_acked = 0  # [0, 1]
        # -- interruption (L2-reinit-4h, L2.4-resume-7d, L2.4-new-cycle) --
        self.int_start_min = -1     # [-1, 1000000000] start of the current interruption, -1 none
        self.int_reason = 0         # [0, 11] STOP_*
        self.int_unknown = 0        # [0, 1] its length cannot be known (power loss, clock fault)
        self.int_rx = 0             # [0, 1] it is for an adverse reaction (a Table 4 hold opened in it)
        self.cycle_ask = 0          # [0, 1] over 7 days, not for a reaction: the clinician is asked
                                    # whether the cycle goes on or a new one starts (L2.4-new-cycle)
        self.int_decided = 0        # [0, 1] the clinician chose to go on with this cycle
        self.reinit_needed = 0      # [0, 1] 4 h or more: acknowledgements needed
        # -- adverse reactions (Table 4): one hold per kind, each with its own clocks; a kind
        # entered again while its hold is open is the same reaction (its grade can only rise) --
        self.rx_crs = 0             # [0, 3] grade of the open CRS hold (3), 0 none (L2.4-restart-9)
        self.rx_icans = 0           # [0, 3] grade of the open ICANS hold (2 or 3), 0 none
        self.rx_icans_onset_min = 0 # [0, 1000000000] when that ICANS began (its 7-day limit)
        self.rx_icans_g3_min = 0    # [0, 1000000000] when it was entered at grade 3 (its 3-day floor)
        self.rx_neuro = 0           # [0, 3] open grade 3 neurologic event hold, 0 none
        self.rx_neuro_onset_min = 0 # [0, 1000000000]
        self.rx_neuro_g3_min = 0    # [0, 1000000000]
        self.rx_seizure = 0         # [0, 3] open grade 3 seizure hold, 0 none
        self.rx_seizure_onset_min = 0   # [0, 1000000000]
        self.rx_seizure_g3_min = 0  # [0, 1000000000]
        self.rx_other = 0           # [0, 4] open other-reaction hold (3 or 4), 0 none
        self.rx_other_onset_min = 0 # [0, 1000000000] (its 14-day limit)
        self.run_ng_per_day = 0     # [0, 28000] drug rate of the bag running, or last running: the
                                    # dose a reaction occurred at (L2.4-neuro-3), 0 before any
        self.seizures = 0           # [0, 2]
        self.decision_pending = 0   # [0, 1] L2.4-other-4
        self.locked = 0             # [0, 1] permanent discontinuation
        self.lock_reason = 0        # [0, 5] RX_* that caused it
        self.overdose_min = -1      # [-1, 1000000000] time of the last overdose, -1 none
        # -- bag (L2-constant-rate, L2.5-durations, L2.6-*) --
        self.bag_loaded = 0         # [0, 1]
        self.bag_ng_per_day = 0     # [0, 28000] drug rate, fixed at acceptance
        self.bag_ul_per_h = 0       # [0, 41666] flow rate, fixed at acceptance
        self.bag_duration_min = 0   # [0, 10080]
        self.bag_run_min = 0        # [0, 10080]
        self.bag_room_min = 0       # [0, 1000000000] minutes at room temperature, infusion included
        self.bag_room_limit_min = 0 # [0, 10080]
        self.bag_volume_ul = 0      # [0, 1000000]
        self.bag_ul = 0             # [0, 1000000] volume delivered from this bag
        self.bag_ng = 0             # [0, 196000] drug delivered from this bag
        self.bag_seq = 0            # [0, 1000000000] bags accepted so far
        self.bag_id = 0             # [0, 1000000000] identity of the loaded bag (pharmacy label), 0 none
        self.bag_in_window = 0      # [0, 1] hung while the low dose was in force (L2.2-step, L2.4-restart-9)
        self.booked_min = -1        # [-1, 1000000000] kernel minute of this bag's last booked minute
        self.last_bag_id = 0        # [0, 1000000000] highest identity hung for this patient
        # -- delivery accounting: remainders of the per-minute quanta --
        self.acc_ng = 0             # [0, 1439] ng/1440 not yet delivered
        self.acc_ul = 0             # [0, 59] ul/60 not yet delivered
        self.day_min = 0            # [0, 1439] minutes into the current 24 h window
        self.day_ng = 0             # [0, 28000] drug booked in the current 24 h window
        self.day_cap_ng = 0         # [0, 28000] highest cap in force in this window
        self.cycle_ng = 0           # [0, 1000000000]
        self.course_ng = 0          # [0, 1000000000]
        self.course_ul = 0          # [0, 1000000000]


# ---------------------------------------------------------------- helpers

def _cap_now(s):
    """The cap in force: the step or restart dose while either window is open."""
    if s.indication == IND_RR and s.step_run_min < STEP_WINDOW_MIN:
        return s.cap_low_ng_per_day     # L2.2-step: R/R days 1-7
    if s.low_left_min > 0:
        return s.cap_low_ng_per_day     # L2.4-restart-9
    return s.cap_full_ng_per_day        # L2-dose-28


def _low_left(s):
    """Infusion minutes left at the low dose: to the end of the R/R step window (L2.2-step, days
    1-7) or of the restart window (L2.4-restart-9), whichever ends later; 0 when neither is open."""
    left = s.low_left_min
    if s.indication == IND_RR and s.step_run_min < STEP_WINDOW_MIN and STEP_WINDOW_MIN - s.step_run_min > left:
        left = STEP_WINDOW_MIN - s.step_run_min
    return left


def _refresh_cap(s):
    s.cap_ng_per_day = _cap_now(s)
    if s.cap_ng_per_day > s.day_cap_ng:
        s.day_cap_ng = s.cap_ng_per_day


def _stop_motor(s, reason):
    """Stop infusing and open an interruption (every stop is recorded). The minute in flight
    was booked before it ran and stays booked: the record is never lower than delivered."""
    if s.mode == MODE_RUNNING:
        s.mode = MODE_STOPPED
        s.int_start_min = s.now_min
        s.int_reason = reason
        s.int_unknown = 0
        s.int_rx = 1 if reason == STOP_REACTION else 0      # L2.4-new-cycle: stopped for a reaction
        s.int_decided = 0
    s.motor_ul_per_h = 0


def _unload_bag(s):
    s.bag_loaded = 0
    s.bag_id = 0
    s.bag_in_window = 0
    s.booked_min = -1
    s.bag_ng_per_day = 0
    s.bag_ul_per_h = 0
    s.bag_duration_min = 0
    s.bag_run_min = 0
    s.bag_room_min = 0
    s.bag_room_limit_min = 0
    s.bag_volume_ul = 0
    s.bag_ul = 0
    s.bag_ng = 0
    s.acc_ng = 0
    s.acc_ul = 0


def _lock(s, kind):
    """Permanent discontinuation (Table 4): the motor never runs again."""
    _stop_motor(s, STOP_REACTION)
    s.locked = 1
    s.lock_reason = kind
    s.alarm = s.alarm | AL_LOCKED


def _begin_cycle(s, number):
    """Start cycle `number`, or close the course when none is left (L2.x-course)."""
    s.cycle_ask = 0                                         # L2.4-new-cycle: answered by the new cycle
    s.int_decided = 0
    if number > s.max_cycles:
        s.phase = PHASE_DONE
        return
    s.cycle = number
    s.phase = PHASE_INFUSION
    s.cycle_run_min = 0
    s.booked_min = -1                                       # a new cycle resumes no minute of the old
    s.cycle_ng = 0
    s.free_min = 0
    s.free_len_min = FREE_SHORT_MIN                         # L2-cycle-42
    if s.indication == IND_RR and number >= RR_FIRST_CONTINUED_CYCLE:
        s.free_len_min = FREE_LONG_MIN                      # L2.2-cycle-84
    # L2-premed (first dose of each cycle), L2-hosp / L2-reinit-4h (cycle starts supervised)
    s.need_premed = 1
    s.need_supervision = 1
    s.premed_acked = 0
    s.supervision_acked = 0


def _update_interruption(s):
    """Flag re-initiation at 4 h; more than 7 days off starts a new cycle."""
    if s.mode != MODE_STOPPED or s.int_start_min < 0:
        return
    off_min = s.now_min - s.int_start_min
    if off_min >= REINIT_MIN or s.int_unknown == 1:          # L2-reinit-4h
        if s.reinit_needed == 0:
            s.reinit_needed = 1
            s.need_premed = 1                               # L2-premed
            s.need_supervision = 1
            s.premed_acked = 0
            s.supervision_acked = 0
            s.alarm = s.alarm | AL_REINIT
    if off_min > NEW_CYCLE_MIN and s.phase == PHASE_INFUSION and s.cycle_run_min > 0:
        if s.int_rx == 1 or _holding(s):
            _begin_cycle(s, s.cycle + 1)                    # L2.4-new-cycle: for an adverse reaction
        elif s.int_decided == 0:
            s.cycle_ask = 1                                 # L2.4-new-cycle: another cause; the clinician decides
    elif s.int_unknown == 1 and s.phase == PHASE_INFUSION and s.cycle_run_min > 0 and s.int_decided == 0:
        s.cycle_ask = 1                                     # L2.4-new-cycle: how long it was cannot be known


def _quantum_ng(s):
    """The drug of the next minute at the bag's rate, remainder included."""
    return (s.acc_ng + s.bag_ng_per_day) // MIN_PER_DAY


def _deliver_minute(s):
    """Account one minute at the bag's constant rate (L2-constant-rate, EXT-no-flush).

    The quantum is booked before the motor runs it, so the record is never lower than
    what was delivered. Remainders carry over; nothing is ever caught up.
    """
    acc = s.acc_ng + s.bag_ng_per_day
    dose_ng = acc // MIN_PER_DAY
    if s.day_ng + dose_ng > s.day_cap_ng:                   # L2-dose-28: last-line guard, the window's cap
        _stop_motor(s, STOP_CAP)
        s.alarm = s.alarm | AL_CAP
        return
    vol = s.acc_ul + s.bag_ul_per_h
    vol_ul = vol // MIN_PER_H
    if s.bag_ul + vol_ul > s.bag_volume_ul:                 # EXT-rates: never more than the bag holds
        _stop_motor(s, STOP_BAG_END)
        _unload_bag(s)
        s.alarm = s.alarm | AL_BAG_END
        return
    s.acc_ng = acc - dose_ng * MIN_PER_DAY
    s.acc_ul = vol - vol_ul * MIN_PER_H
    s.day_ng = s.day_ng + dose_ng
    s.booked_min = s.now_min
    s.bag_ng = s.bag_ng + dose_ng
    s.bag_ul = s.bag_ul + vol_ul
    s.cycle_ng = min(s.cycle_ng + dose_ng, COUNTER_MAX)
    s.course_ng = min(s.course_ng + dose_ng, COUNTER_MAX)
    s.course_ul = min(s.course_ul + vol_ul, COUNTER_MAX)
    s.bag_run_min = s.bag_run_min + 1
    s.cycle_run_min = s.cycle_run_min + 1
    if s.indication == IND_RR and s.step_run_min < STEP_WINDOW_MIN:
        s.step_run_min = s.step_run_min + 1                 # L2.2-step
    if s.low_left_min > 0:
        s.low_left_min = s.low_left_min - 1                 # L2.4-restart-9


def _end_checks(s):
    """End what the minutes booked so far completed: the cycle, the bag, or its
    room-temperature life (running or stopped: a minute booked before a stop is spent)."""
    if s.mode != MODE_NO_PATIENT and s.phase == PHASE_INFUSION and s.cycle_run_min >= CYCLE_INFUSION_MIN:
        s.mode = MODE_STOPPED                               # L2-cycle-42: 28 days given
        s.motor_ul_per_h = 0
        s.int_start_min = -1
        s.phase = PHASE_FREE
        s.free_min = 0
        s.cycle_ask = 0                                     # L2.4-new-cycle: no cycle left to decide on
        s.int_decided = 0
        _unload_bag(s)
        return
    if s.bag_loaded == 1 and (s.bag_run_min >= s.bag_duration_min or (s.bag_in_window == 1 and _low_left(s) == 0)):
        _stop_motor(s, STOP_BAG_END)                        # L2.5-durations; L2.2-step, L2.4-restart-9:
        _unload_bag(s)                                      # a low-dose bag ends the day the dose steps
        s.alarm = s.alarm | AL_BAG_END                      # up, never runs into it (L2.5-errors)
        return
    if s.bag_loaded == 1 and (s.bag_room_min >= s.bag_room_limit_min or s.bag_ul >= s.bag_volume_ul):
        _stop_motor(s, STOP_BAG_EXPIRED)                    # L2.6-bag-*: storage includes infusion
        _unload_bag(s)
        s.alarm = s.alarm | AL_BAG_EXPIRED


def _holding(s):
    """A Table 4 hold is open (any kind): the motor stays stopped."""
    return s.rx_crs != 0 or s.rx_icans != 0 or s.rx_neuro != 0 or s.rx_seizure != 0 or s.rx_other != 0


def _check_reaction_timers(s):
    """Table 4 time limits that end therapy if a reaction does not resolve in time, each
    from that reaction's own onset."""
    if s.locked == 1:
        return
    if s.rx_icans == 3 and s.now_min - s.rx_icans_onset_min > NEURO3_MAX_RESOLVE_MIN:
        _lock(s, RX_ICANS)                                  # L2.4-neuro-3
    elif s.rx_neuro == 3 and s.now_min - s.rx_neuro_onset_min > NEURO3_MAX_RESOLVE_MIN:
        _lock(s, RX_NEURO)                                  # L2.4-neuro-3
    elif s.rx_seizure == 3 and s.now_min - s.rx_seizure_onset_min > NEURO3_MAX_RESOLVE_MIN:
        _lock(s, RX_SEIZURE)                                # L2.4-neuro-3
    elif s.rx_other >= 3 and s.now_min - s.rx_other_onset_min > OTHER3_MAX_RESOLVE_MIN:
        _lock(s, RX_OTHER)                                  # L2.4-other-3


# ---------------------------------------------------------------- entry points

def tick(s):
    """One minute of a trustworthy clock has passed."""
    s.now_min = min(s.now_min + 1, COUNTER_MAX)
    s.day_min = s.day_min + 1
    if s.day_min >= MIN_PER_DAY:                            # a new 24 h window
        s.day_min = 0
        s.day_ng = 0
        s.day_cap_ng = 0
    _refresh_cap(s)
    if s.bag_loaded == 1:
        s.bag_room_min = min(s.bag_room_min + 1, COUNTER_MAX)
    was_free = s.phase == PHASE_FREE                        # a cycle ending now starts its interval now
    _end_checks(s)                                          # the minute booked before has run
    if s.mode == MODE_RUNNING:
        if s.bag_ng_per_day > s.cap_ng_per_day or s.locked == 1 or s.fault == 1:
            _stop_motor(s, STOP_CAP)                        # L2-dose-28, L2.2-step guard
            s.alarm = s.alarm | AL_CAP
        else:
            _deliver_minute(s)                              # book the next minute
            _refresh_cap(s)
    elif was_free:
        s.free_min = min(s.free_min + 1, COUNTER_MAX)
        if s.free_min >= s.free_len_min:
            _begin_cycle(s, s.cycle + 1)                    # L2-cycle-42, L2.2-cycle-84
    _update_interruption(s)
    _check_reaction_timers(s)
    return OK


def _check_body(weight_g, bsa_cm2):
    if weight_g < WEIGHT_MIN_G or weight_g > WEIGHT_MAX_G:
        return E_WEIGHT                                     # L2-weight-45
    if weight_g < WEIGHT_FIXED_G and (bsa_cm2 < BSA_MIN_CM2 or bsa_cm2 > BSA_MAX_CM2):
        return E_BSA                                        # L2-dose-28: BSA-based below 45 kg
    return OK


def _set_body(s, weight_g, bsa_cm2):
    """The patient's weight and BSA, and the caps derived from them (L2-dose-28, L2-weight-45)."""
    s.weight_g = weight_g
    s.bsa_cm2 = 0
    if weight_g >= WEIGHT_FIXED_G:                          # L2-weight-45: fixed dose
        s.cap_full_ng_per_day = CAP_FULL_NG_PER_DAY
        s.cap_low_ng_per_day = CAP_STEP_NG_PER_DAY
    else:                                                   # 15 and 5 mcg/m2/day, capped
        s.bsa_cm2 = bsa_cm2
        s.cap_full_ng_per_day = min((bsa_cm2 * 3) // 2, CAP_FULL_NG_PER_DAY)
        s.cap_low_ng_per_day = min(bsa_cm2 // 2, CAP_STEP_NG_PER_DAY)


def setup(s, patient_id, indication, weight_g, bsa_cm2, course_cycles):
    """Enter the patient; the kernel derives its own caps (L2-dose-28, L2-weight-45).

    `course_cycles` is the site's number of consolidation cycles (L2.3-course: a site setting,
    1..CONS_CYCLES_MAX); for MRD+ and R/R the label gives the count, and it must be 0."""
    if s.fault == 1:
        return E_FAULT
    if s.mode != MODE_NO_PATIENT:
        return E_STATE
    if indication != IND_MRD and indication != IND_RR and indication != IND_CONS:
        return E_INDICATION                                 # L1.1, L1.2, L1.3
    body = _check_body(weight_g, bsa_cm2)
    if body != OK:
        return body                                         # L2-weight-45, L2-dose-28
    if patient_id < 1 or patient_id > COUNTER_MAX:
        return E_ARG
    if indication == IND_CONS and (course_cycles < 1 or course_cycles > CONS_CYCLES_MAX):
        return E_ARG                                        # L2.3-course: the site's count, never defaulted
    if indication != IND_CONS and course_cycles != 0:
        return E_ARG                                        # L2.1-course, L2.2-course: the label's count
    s.patient_id = patient_id
    s.indication = indication
    _set_body(s, weight_g, bsa_cm2)
    s.max_cycles = course_cycles                            # L2.3-course (site setting)
    if indication == IND_MRD:
        s.max_cycles = MAX_CYCLES_MRD                       # L2.1-course
    elif indication == IND_RR:
        s.max_cycles = MAX_CYCLES_RR                        # L2.2-course
    s.mode = MODE_STOPPED
    s.step_run_min = 0
    s.step_premed_done = 0
    s.low_left_min = 0
    _begin_cycle(s, 1)
    _refresh_cap(s)
    return OK


def _rate_ul_per_h(duration_h):
    """EXT-rates: the site's rate for a bag of this duration (0 for a duration not in the table)."""
    if duration_h == 24:
        return RATE_24H_UL_PER_H
    if duration_h == 48:
        return RATE_48H_UL_PER_H
    if duration_h == 72:
        return RATE_72H_UL_PER_H
    if duration_h == 96:
        return RATE_96H_UL_PER_H
    if duration_h == 168:
        return RATE_7D_UL_PER_H
    return 0


def _infused_ul(duration_h):
    """EXT-rates: the volume a bag of this duration infuses at the table rate (rate x duration)."""
    if duration_h == 24:
        return RATE_24H_UL_PER_H * 24
    if duration_h == 48:
        return RATE_48H_UL_PER_H * 48
    if duration_h == 72:
        return RATE_72H_UL_PER_H * 72
    if duration_h == 96:
        return RATE_96H_UL_PER_H * 96
    return RATE_7D_UL_PER_H * 168


def _order_ng_per_day(drug_ng, volume_ul, duration_h):
    """The drug a bag delivers per day: its concentration (drug / bag volume) times the volume
    it infuses per day at the table rate (EXT-rates), rounded up, so the cap check and the
    record err on the high side. The order's one division by an input (DESIGN.md: computed
    once, where the bag is accepted, then stored as the bag's daily rate); `volume_ul` is
    positive (checked before)."""
    if duration_h == 24:
        return (drug_ng * (RATE_24H_UL_PER_H * 24) + volume_ul - 1) // volume_ul
    if duration_h == 48:
        return (drug_ng * (RATE_48H_UL_PER_H * 24) + volume_ul - 1) // volume_ul
    if duration_h == 72:
        return (drug_ng * (RATE_72H_UL_PER_H * 24) + volume_ul - 1) // volume_ul
    if duration_h == 96:
        return (drug_ng * (RATE_96H_UL_PER_H * 24) + volume_ul - 1) // volume_ul
    return (drug_ng * (RATE_7D_UL_PER_H * 24) + volume_ul - 1) // volume_ul


def _check_bag(s, patient_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative, room_min, fridge_min):
    if s.locked == 1:
        return E_LOCKED                                     # L2.4-*
    if s.mode == MODE_NO_PATIENT or s.mode == MODE_RUNNING:
        return E_STATE                                      # change bags only when stopped
    if patient_id != s.patient_id:
        return E_PATIENT                                    # L2.5-errors
    if s.phase == PHASE_DONE:
        return E_COURSE_DONE                                # L2.x-course: no bag after the last cycle
    if s.phase == PHASE_FREE:
        return E_FREE_INTERVAL                              # L2-cycle-42, L2.2-cycle-84: none in the break
    if duration_h != 24 and duration_h != 48 and duration_h != 72 and duration_h != 96 and duration_h != 168:
        return E_DURATION                                   # L2.5-durations
    if preservative != 0 and preservative != 1:
        return E_ARG
    if (duration_h <= 48 and preservative == 1) or (duration_h >= 72 and preservative == 0):
        return E_PRESERVATIVE                               # L2.5-durations
    if preservative == 1 and s.weight_g < WEIGHT_PRESERVATIVE_MIN_G:
        return E_MIN_WEIGHT                                 # L2.5-min-weight
    if volume_ul < BAG_VOLUME_MIN_UL or volume_ul > BAG_VOLUME_MAX_UL:
        return E_VOLUME                                     # L2.5-errors
    if drug_ng < 1 or drug_ng > BAG_DRUG_MAX_NG:
        return E_VOLUME                                     # L2.5-errors
    if rate_ul_per_h != _rate_ul_per_h(duration_h):
        return E_RATE                                       # EXT-rates: the labelled rate is the table's
    if _infused_ul(duration_h) > volume_ul:
        return E_RATE                                       # EXT-rates: the bag holds what it infuses
    if _order_ng_per_day(drug_ng, volume_ul, duration_h) > _cap_now(s):
        return E_DOSE_CAP                                   # L2-dose-28, L2.2-step, L2.4-restart-9
    if s.cycle_run_min + duration_h * MIN_PER_H > CYCLE_INFUSION_MIN:
        return E_CYCLE_END                                  # L2-cycle-42: no bag past day 28
    if room_min < 0 or fridge_min < 0:
        return E_STORAGE
    duration_min = duration_h * MIN_PER_H
    if duration_h <= 48:
        if fridge_min > FRIDGE_24_48_MIN or room_min + duration_min > ROOM_24_48_MIN:
            return E_STORAGE                                # L2.6-bag-24-48
    elif duration_h <= 96:
        if fridge_min > FRIDGE_72_96_MIN or room_min + duration_min > ROOM_72_96_MIN:
            return E_STORAGE                                # L2.6-bag-72-96
    elif fridge_min > FRIDGE_7D_MIN or room_min + duration_min > ROOM_7D_MIN:
        return E_STORAGE                                    # L2.6-bag-7d
    return OK


def _same_bag(s, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h):
    """The order is the loaded bag's, re-sent (same identity and contents)."""
    return (s.bag_loaded == 1 and bag_id == s.bag_id and volume_ul == s.bag_volume_ul
            and rate_ul_per_h == s.bag_ul_per_h and duration_h * MIN_PER_H == s.bag_duration_min
            and rate_ul_per_h == _rate_ul_per_h(duration_h)
            and _order_ng_per_day(drug_ng, volume_ul, duration_h) == s.bag_ng_per_day)


def bag(s, patient_id, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative, room_min, fridge_min):
    """Accept a prepared bag; its rates are fixed here for its whole life (L2-constant-rate).

    `drug_ng` and `volume_ul` are what the bag holds, overfill included; `rate_ul_per_h` is the
    rate on its pharmacy label, which must be the site's table rate for the duration. The bag
    runs at that rate for its duration and delivers its concentration times the volume infused;
    the overfill stays behind and is never flushed (EXT-rates, EXT-no-flush).

    `bag_id` is the bag's identity from its pharmacy label, increasing for a patient. The loaded
    bag's order sent again (a retry whose reply was lost) changes nothing: the bag goes on with
    its run, room-temperature and volume clocks (L2.6-bag-*). Any other identity not above every
    bag hung for this patient is refused: a bag once hung cannot start its clocks again."""
    if s.locked == 0 and s.mode == MODE_STOPPED and patient_id == s.patient_id and _same_bag(
            s, bag_id, drug_ng, volume_ul, rate_ul_per_h, duration_h):
        return OK                                           # L2.6-bag-*: the same bag, clocks kept
    status = _check_bag(s, patient_id, drug_ng, volume_ul, rate_ul_per_h, duration_h, preservative,
                        room_min, fridge_min)
    if status != OK:
        return status
    if bag_id < 1 or bag_id > COUNTER_MAX:
        return E_ARG
    if bag_id <= s.last_bag_id:
        return E_BAG_ID                                     # L2.6-bag-*, L2.5-errors: hung before
    _unload_bag(s)
    s.bag_loaded = 1
    s.bag_id = bag_id
    s.last_bag_id = bag_id
    if _low_left(s) > 0:
        s.bag_in_window = 1                                 # L2.2-step, L2.4-restart-9
    s.bag_ng_per_day = _order_ng_per_day(drug_ng, volume_ul, duration_h)   # EXT-rates
    s.bag_ul_per_h = rate_ul_per_h                          # EXT-rates: the labelled rate
    s.bag_duration_min = duration_h * MIN_PER_H
    s.bag_volume_ul = volume_ul
    s.bag_room_min = room_min
    s.bag_room_limit_min = ROOM_7D_MIN                      # L2.6-bag-7d
    if duration_h <= 48:
        s.bag_room_limit_min = ROOM_24_48_MIN               # L2.6-bag-24-48
    elif duration_h <= 96:
        s.bag_room_limit_min = ROOM_72_96_MIN               # L2.6-bag-72-96
    s.bag_seq = min(s.bag_seq + 1, COUNTER_MAX)
    return OK


def remove_bag(s):
    if s.mode != MODE_STOPPED or s.bag_loaded == 0:
        return E_STATE
    _unload_bag(s)
    return OK


def start(s):
    """Start or resume the infusion, if every rule allows it."""
    if s.locked == 1:
        return E_LOCKED                                     # L2.4-*
    if s.fault == 1:
        return E_FAULT
    if s.mode != MODE_STOPPED:
        return E_STATE
    if s.decision_pending == 1:
        return E_DECISION                                   # L2.4-other-4
    if _holding(s):
        return E_WITHHOLD                                   # L2.4-neuro-3, L2.4-other-3, L2.4-icans-2, L2.4-restart-9
    if s.overdose_min >= 0 and s.now_min - s.overdose_min < OVERDOSE_WAIT_MIN:
        return E_OVERDOSE_12H                               # EXT-overdose-12h
    if s.phase == PHASE_DONE:
        return E_COURSE_DONE                                # L2.x-course
    if s.phase == PHASE_FREE:
        return E_FREE_INTERVAL                              # L2-cycle-42, L2.2-cycle-84
    if s.bag_loaded == 0 or s.bag_run_min >= s.bag_duration_min:
        return E_NO_BAG                                     # no bag, or its last minute is spent
    if s.cycle_run_min >= CYCLE_INFUSION_MIN:
        return E_CYCLE_END                                  # L2-cycle-42: the 28th day is spent
    _update_interruption(s)
    if s.cycle_ask == 1:
        return E_DECISION                                   # L2.4-new-cycle: the clinician decides first
    _refresh_cap(s)
    premed_ok = s.premed_acked == 1 and s.now_min - s.premed_ack_min <= PREMED_WINDOW_MIN   # L2-premed
    if (s.need_premed == 1 and not premed_ok) or (s.need_supervision == 1 and s.supervision_acked == 0):
        return E_REINIT                                     # L2-reinit-4h, L2-premed
    if s.bag_ng_per_day > s.cap_ng_per_day:
        return E_DOSE_CAP                                   # L2.2-step, L2.4-restart-9
    resume = s.booked_min == s.now_min                      # this minute is booked already, cut short
    if not resume and s.day_ng + _quantum_ng(s) > s.day_cap_ng:
        return E_DOSE_CAP                                   # L2-dose-28: the 24 h guard, known at START
    if not resume and s.bag_ul + (s.acc_ul + s.bag_ul_per_h) // MIN_PER_H > s.bag_volume_ul:
        return E_NO_BAG                                     # EXT-rates: the bag holds no more minute
    if s.indication == IND_RR and s.step_premed_done == 0 and s.bag_ng_per_day > s.cap_low_ng_per_day:
        if not premed_ok:
            return E_STEP_PREMED                            # L2-premed before the step dose
        s.step_premed_done = 1
    s.mode = MODE_RUNNING
    s.run_ng_per_day = s.bag_ng_per_day                     # L2.4-neuro-3: the dose now running
    if not resume:
        _deliver_minute(s)                                  # the first minute, booked before it runs
        _refresh_cap(s)
    s.motor_ul_per_h = s.bag_ul_per_h                       # L2-constant-rate
    s.int_start_min = -1
    s.int_reason = 0
    s.int_unknown = 0
    s.int_rx = 0
    s.int_decided = 0
    s.reinit_needed = 0
    s.need_premed = 0
    s.need_supervision = 0
    s.premed_acked = 0
    s.supervision_acked = 0
    s.alarm = s.alarm & (255 - AL_REINIT)
    return OK


def stop(s, reason):
    """Interrupt the infusion; the interruption is timed from now."""
    if reason < STOP_CLINICIAN or reason > STOP_ALARM:
        return E_ARG
    if s.mode != MODE_RUNNING:
        return E_STATE
    _stop_motor(s, reason)
    return OK


def ack(s, what):
    """Acknowledge premedication given or supervision in place (L2-premed, L2-reinit-4h)."""
    if s.mode == MODE_NO_PATIENT:
        return E_STATE
    if what == ACK_PREMED:
        s.premed_acked = 1
        s.premed_ack_min = s.now_min                        # L2-premed: counts for the next hour
    elif what == ACK_SUPERVISION:
        s.supervision_acked = 1
    else:
        return E_ARG
    return OK


def ack_alarm(s, bits):
    """Silence alarms; the re-initiation and lock-out alarms stay while their cause does."""
    if bits < 0 or bits > 255:
        return E_ARG
    keep = 0
    if s.reinit_needed == 1:
        keep = keep | AL_REINIT
    if s.locked == 1:
        keep = keep | AL_LOCKED
    if s.fault == 1:
        keep = keep | AL_FAULT
    s.alarm = (s.alarm & (255 - bits)) | (s.alarm & keep)
    return OK


def _neuro(kind):
    """A neurologic toxicity of Table 4: a neurologic event, ICANS, or a seizure (L2.4-seizure:
    Table 4 lists seizures under neurological toxicity; their grade applies L2.4-neuro-3/-4)."""
    return kind == RX_NEURO or kind == RX_ICANS or kind == RX_SEIZURE


def _check_scale(kind, scale):
    """L2.4-grading: Table 4's grades are CTCAE; ICANS may be graded on the ASTCT scale."""
    if scale == SCALE_CTCAE:
        return OK
    if scale == SCALE_ASTCT and kind == RX_ICANS:
        return OK
    return E_SCALE


def _open_hold(s, kind, grade):
    """Open (or raise) the hold of this kind. A kind entered again while its hold is open is the
    same reaction: its onset stays (the 7-day and 14-day limits run from it), its 3-day floor runs
    from the entry that first made it grade 3, and its grade never drops (L2.4-neuro-3,
    L2.4-other-3): documenting it again never moves a clock."""
    if kind == RX_CRS:
        s.rx_crs = 3                                        # L2.4-restart-9: grade 3 CRS
    elif kind == RX_ICANS:
        if s.rx_icans == 0:
            s.rx_icans_onset_min = s.now_min
        if grade == 3 and s.rx_icans != 3:
            s.rx_icans_g3_min = s.now_min                   # L2.4-neuro-3: at least 3 days from here
        s.rx_icans = max(s.rx_icans, grade)                 # L2.4-icans-2 (2), L2.4-neuro-3 (3)
    elif kind == RX_NEURO:
        if s.rx_neuro == 0:
            s.rx_neuro_onset_min = s.now_min
            s.rx_neuro_g3_min = s.now_min
        s.rx_neuro = 3                                      # L2.4-neuro-3
    elif kind == RX_SEIZURE:
        if s.rx_seizure == 0:
            s.rx_seizure_onset_min = s.now_min
            s.rx_seizure_g3_min = s.now_min
        s.rx_seizure = 3                                    # L2.4-seizure, L2.4-neuro-3
    else:
        if s.rx_other == 0:
            s.rx_other_onset_min = s.now_min
        s.rx_other = max(s.rx_other, grade)                 # L2.4-other-3, L2.4-other-4


def reaction(s, kind, grade, scale):
    """A clinician enters an adverse reaction with its grade and the grade's scale: Table 4
    applied mechanically (L2.4-*). Several reactions can be open at once, one hold per kind,
    each with its own clocks; the pump restarts when every one is resolved."""
    if s.mode == MODE_NO_PATIENT:
        return E_STATE
    if kind < RX_CRS or kind > RX_OTHER or grade < 1 or grade > 4:
        return E_ARG
    if _check_scale(kind, scale) != OK:
        return E_SCALE                                      # L2.4-grading
    at_low = 0
    if s.run_ng_per_day > 0 and s.run_ng_per_day <= s.cap_low_ng_per_day:
        at_low = 1                                          # L2.4-neuro-3: the dose running when it began
    if kind == RX_SEIZURE:
        s.seizures = min(s.seizures + 1, 2)                 # L2.4-seizure: counted, whatever its grade
        if s.seizures > 1:
            _lock(s, RX_SEIZURE)                            # L2.4-seizure: more than one
            return OK
    if grade == 4 and kind != RX_OTHER:
        _lock(s, kind)                                      # L2.4-crs-4, L2.4-neuro-4 (seizures too)
        return OK
    if _neuro(kind) and grade == 3 and at_low == 1:
        _lock(s, kind)                                      # L2.4-neuro-3: at 9 mcg/day
        return OK
    if grade < 3 and not (kind == RX_ICANS and grade == 2):
        return OK                                           # recorded by the log only (Table 4)
    _stop_motor(s, STOP_REACTION)
    s.int_rx = 1                                            # L2.4-new-cycle: an interruption for a reaction
    if kind == RX_OTHER and grade == 4:
        s.decision_pending = 1                              # L2.4-other-4: the pump asks
    _open_hold(s, kind, grade)
    _update_interruption(s)                                 # L2.4-new-cycle: already over 7 days
    return OK


def decide(s, discontinue):
    """The clinician's decision after another grade 4 reaction (L2.4-other-4)."""
    if s.decision_pending == 0:
        return E_STATE
    if discontinue != 0 and discontinue != 1:
        return E_ARG
    s.decision_pending = 0
    if discontinue == 1:
        _lock(s, RX_OTHER)
    return OK


def _neuro3_status(s, onset_min, g3_min):
    """L2.4-neuro-3: at least 3 days from the grade 3 entry (E_WITHHOLD before); more than 7
    days from the reaction's onset is permanent (E_LOCKED)."""
    if s.now_min - g3_min < NEURO3_MIN_WITHHOLD_MIN:
        return E_WITHHOLD                                   # L2.4-neuro-3: at least 3 days
    if s.now_min - onset_min > NEURO3_MAX_RESOLVE_MIN:
        return E_LOCKED                                     # L2.4-neuro-3: more than 7 days
    return OK


def _resolve_status(s, kind):
    """What resolving the open hold of `kind` now means: OK, E_WITHHOLD (too early),
    E_DECISION (decide first) or E_LOCKED (too late: permanent)."""
    if kind == RX_ICANS and s.rx_icans == 3:
        return _neuro3_status(s, s.rx_icans_onset_min, s.rx_icans_g3_min)
    if kind == RX_NEURO:
        return _neuro3_status(s, s.rx_neuro_onset_min, s.rx_neuro_g3_min)
    if kind == RX_SEIZURE:
        return _neuro3_status(s, s.rx_seizure_onset_min, s.rx_seizure_g3_min)
    if kind == RX_OTHER and s.decision_pending == 1:
        return E_DECISION                                   # L2.4-other-4: decided first
    if kind == RX_OTHER and s.now_min - s.rx_other_onset_min > OTHER3_MAX_RESOLVE_MIN:
        return E_LOCKED                                     # L2.4-other-3: more than 14 days
    return OK                                               # CRS, ICANS 2: until resolved


def _close_hold(s, kind):
    if kind == RX_CRS:
        s.rx_crs = 0                                        # L2.4-restart-9
    elif kind == RX_ICANS:
        s.rx_icans = 0                                      # L2.4-icans-2, L2.4-neuro-3
    elif kind == RX_NEURO:
        s.rx_neuro = 0                                      # L2.4-neuro-3
    elif kind == RX_SEIZURE:
        s.rx_seizure = 0                                    # L2.4-neuro-3
    else:
        s.rx_other = 0                                      # L2.4-other-3


def _hold_of(s, kind):
    if kind == RX_CRS:
        return s.rx_crs
    if kind == RX_ICANS:
        return s.rx_icans
    if kind == RX_NEURO:
        return s.rx_neuro
    if kind == RX_SEIZURE:
        return s.rx_seizure
    return s.rx_other


def resolved(s, kind):
    """The reaction of `kind` has resolved (grade 1 or less; ICANS: resolved): its hold closes.
    The 7-day window at the reduced dose starts (again) with each one (L2.4-restart-9); the
    pump restarts once no hold is open."""
    if kind < RX_CRS or kind > RX_OTHER:
        return E_ARG
    if s.locked == 1 or _hold_of(s, kind) == 0:
        return E_STATE
    status = _resolve_status(s, kind)
    if status == E_LOCKED:
        _lock(s, kind)                                      # L2.4-neuro-3, L2.4-other-3: too late
        return E_LOCKED
    if status != OK:
        return status
    _close_hold(s, kind)
    s.low_left_min = RESTART_LOW_MIN                        # L2.4-restart-9, L2.4-icans-2
    if s.indication == IND_RR:
        s.step_premed_done = 0                              # L2-premed: the escalation is a step dose too
    _refresh_cap(s)
    return OK


def cycle_decision(s, new_cycle):
    """The clinician's answer after an interruption of more than 7 days that was not for an
    adverse reaction (L2.4-new-cycle is silent on it): 1 starts a new cycle, 0 goes on with
    this one (to its 28 infusion days, L2-cycle-42)."""
    if s.cycle_ask == 0:
        return E_STATE
    if new_cycle != 0 and new_cycle != 1:
        return E_ARG
    s.cycle_ask = 0
    if new_cycle == 1:
        _begin_cycle(s, s.cycle + 1)                        # L2.4-new-cycle (by decision)
    else:
        s.int_decided = 1
    return OK


def update_patient(s, weight_g, bsa_cm2):
    """An authorised clinician enters a new weight and BSA (at a cycle start, or whenever
    stopped): the caps follow the patient's current values (L2-dose-28, L2-weight-45). A loaded
    bag above the new cap, or with preservative for a patient now under 5.4 kg, is refused:
    it is taken off, never started (L2.5-errors, L2.5-min-weight)."""
    if s.fault == 1:
        return E_FAULT
    if s.mode != MODE_STOPPED:
        return E_STATE
    body = _check_body(weight_g, bsa_cm2)
    if body != OK:
        return body                                         # L2-weight-45, L2-dose-28
    _set_body(s, weight_g, bsa_cm2)
    _refresh_cap(s)
    if s.bag_loaded == 1 and s.bag_ng_per_day > s.cap_ng_per_day:
        _unload_bag(s)                                      # L2-dose-28: above the new cap
    if s.bag_loaded == 1 and s.bag_duration_min > 2880 and weight_g < WEIGHT_PRESERVATIVE_MIN_G:
        _unload_bag(s)                                      # L2.5-min-weight
    return OK


def _clear_patient(s):
    """Every field back to its start-up value but the clock and the board's bag counter."""
    s.mode = 0
    s.fault = 0
    s.alarm = 0
    s.motor_ul_per_h = 0
    s.patient_id = 0
    s.indication = 0
    s.weight_g = 0
    s.bsa_cm2 = 0
    s.cap_full_ng_per_day = 0
    s.cap_low_ng_per_day = 0
    s.cap_ng_per_day = 0
    s.cycle = 0
    s.max_cycles = 0
    s.phase = 0
    s.cycle_run_min = 0
    s.free_min = 0
    s.free_len_min = 0
    s.step_run_min = 0
    s.step_premed_done = 0
    s.low_left_min = 0
    s.need_premed = 0
    s.need_supervision = 0
    s.premed_acked = 0
    s.premed_ack_min = -1
    s.supervision_acked = 0
    s.int_start_min = -1
    s.int_reason = 0
    s.int_unknown = 0
    s.int_rx = 0
    s.cycle_ask = 0
    s.int_decided = 0
    s.reinit_needed = 0
    s.rx_crs = 0
    s.rx_icans = 0
    s.rx_icans_onset_min = 0
    s.rx_icans_g3_min = 0
    s.rx_neuro = 0
    s.rx_neuro_onset_min = 0
    s.rx_neuro_g3_min = 0
    s.rx_seizure = 0
    s.rx_seizure_onset_min = 0
    s.rx_seizure_g3_min = 0
    s.rx_other = 0
    s.rx_other_onset_min = 0
    s.run_ng_per_day = 0
    s.seizures = 0
    s.decision_pending = 0
    s.locked = 0
    s.lock_reason = 0
    s.overdose_min = -1
    _unload_bag(s)                                          # the bag and its remainders
    s.last_bag_id = 0
    s.day_min = 0
    s.day_ng = 0
    s.day_cap_ng = 0
    s.cycle_ng = 0
    s.course_ng = 0
    s.course_ul = 0


def end_therapy(s):
    """An authorised clinician ends this patient's therapy (stopped, any phase, locked or not):
    the board takes the next patient with a new set-up. The old record is not erased: the
    controller archives it and logs the end before this runs (pump.Controller)."""
    if s.fault == 1:
        return E_FAULT
    if s.mode != MODE_STOPPED:
        return E_STATE
    _clear_patient(s)
    return OK


def overdose(s):
    """An overdose was found: stop; no restart for 12 hours (EXT-overdose-12h)."""
    if s.mode == MODE_NO_PATIENT:
        return E_STATE
    _stop_motor(s, STOP_OVERDOSE)
    s.overdose_min = s.now_min
    return OK


def flush(s):
    """Flush, prime and bolus are refused whenever a line may be connected (EXT-no-flush)."""
    if s.mode == MODE_NO_PATIENT and s.bag_loaded == 0:
        return E_STATE
    return E_NO_FLUSH


def power_up(s, outage_min):
    """Restart after power loss; outage_min is -1 when no trustworthy clock measured it.

    The motor never restarts by itself. An unknown outage counts as 4 h or more
    (L2-reinit-4h), and a bag whose room-temperature time is unknown is discarded (L2.6-bag-*).
    An outage below -1 (a clock that ran backwards) is not trusted either: it is handled as
    unknown and reported as E_ARG, after the motor is stopped.
    """
    was_running = s.mode == MODE_RUNNING
    _stop_motor(s, STOP_POWER)
    if was_running:
        s.alarm = s.alarm | AL_POWER
    if outage_min < 0 or outage_min > OUTAGE_MAX_MIN:       # unknown, backwards or implausible
        if s.int_start_min >= 0:
            s.int_unknown = 1
        if s.bag_loaded == 1:
            _unload_bag(s)
            s.alarm = s.alarm | AL_BAG_EXPIRED
        _update_interruption(s)
        if outage_min < -1:
            return E_ARG
        return OK
    s.now_min = min(s.now_min + outage_min, COUNTER_MAX)
    if s.bag_loaded == 1:
        s.bag_room_min = min(s.bag_room_min + outage_min, COUNTER_MAX)
    if s.phase == PHASE_FREE:
        s.free_min = min(s.free_min + outage_min, COUNTER_MAX)
    if outage_min >= MIN_PER_DAY or s.day_min + outage_min >= MIN_PER_DAY:
        s.day_min = 0                                       # the 24 h window ended in the outage
        s.day_ng = 0
        s.day_cap_ng = 0
    else:
        s.day_min = s.day_min + outage_min                  # a known outage is time of the window
    _end_checks(s)
    _update_interruption(s)
    _check_reaction_timers(s)
    return OK


def _latch_fault(s):
    """Stop, latch the fault with its alarm, and count the open interruption as of unknown
    length, hence 4 h or more (L2-reinit-4h)."""
    _stop_motor(s, STOP_FAULT)
    s.fault = 1
    s.alarm = s.alarm | AL_FAULT
    if s.int_start_min >= 0:
        s.int_unknown = 1
    _update_interruption(s)


def fault(s):
    """The record could not be written or was corrupt, or the motor did not answer: stop,
    alarm, and treat the gap as of unknown length (L2-reinit-4h). The clock is still trusted,
    so a loaded bag's room-temperature time keeps counting; clock faults go through
    `clock_fault`."""
    _latch_fault(s)
    return OK


def clock_fault(s):
    """The board's clock ran backwards or jumped forwards (a gap no late tick explains): the
    time since the last counted minute is unknown, and none of it is counted (counting it
    could shorten the free interval, L2-cycle-42, the 12 h wait, EXT-overdose-12h, and the
    3-day withhold, L2.4-neuro-3).
    Stop and latch as `fault` does: the open interruption counts as 4 h or more
    (L2-reinit-4h). A loaded bag is discarded: its room-temperature time, which includes
    infusion time, is unknown, so its storage limit cannot be shown to hold (L2.6-bag-24-48,
    L2.6-bag-72-96, L2.6-bag-7d), exactly as after an unknown outage (`power_up(s, -1)`).
    A repeat while latched with no bag left has nothing to change: E_FAULT, and the board
    need not record it again (a jittering clock must not flood the record)."""
    if s.fault == 1 and s.bag_loaded == 0:
        return E_FAULT
    _latch_fault(s)
    if s.bag_loaded == 1:
        _unload_bag(s)
        s.alarm = s.alarm | AL_BAG_EXPIRED
    return OK


def clear_fault(s):
    """A clinician clears a fault after checking the pump; therapy stays stopped."""
    if s.fault == 0:
        return E_STATE
    s.fault = 0
    s.alarm = s.alarm & (255 - AL_FAULT)
    return OK


def invariant(s):
    """What must hold between any two entry points; verify/ proves it inductive."""
    return (
        s.mode >= MODE_NO_PATIENT and s.mode <= MODE_RUNNING
        and s.cap_ng_per_day <= CAP_FULL_NG_PER_DAY
        and s.cap_low_ng_per_day <= s.cap_full_ng_per_day
        and s.cap_low_ng_per_day <= CAP_STEP_NG_PER_DAY
        and s.acc_ng >= 0 and s.acc_ng < MIN_PER_DAY
        and s.acc_ul >= 0 and s.acc_ul < MIN_PER_H
        and s.day_ng >= 0 and s.day_ng <= s.day_cap_ng
        and (s.mode != MODE_RUNNING or s.run_ng_per_day == s.bag_ng_per_day)
        and s.day_cap_ng <= CAP_FULL_NG_PER_DAY
        and (s.mode != MODE_RUNNING or (
            s.bag_loaded == 1 and s.locked == 0 and s.fault == 0
            and s.phase == PHASE_INFUSION
            and s.bag_ng_per_day <= s.cap_ng_per_day
            and s.motor_ul_per_h == s.bag_ul_per_h
            and s.int_start_min == -1
            and not _holding(s) and s.decision_pending == 0 and s.cycle_ask == 0))
        and (s.mode == MODE_RUNNING or s.motor_ul_per_h == 0)
        and (s.bag_loaded == 1 or (s.bag_ng_per_day == 0 and s.bag_ul_per_h == 0))
        and s.bag_run_min <= s.bag_duration_min
        and s.cycle_run_min <= CYCLE_INFUSION_MIN
        # -- strengthening found with verify/ (each conjunct is needed for induction) --
        and s.cap_ng_per_day == _cap_now(s)                 # the cap in force is always current
        and (s.phase != PHASE_INFUSION or s.cycle_run_min <= CYCLE_INFUSION_MIN)
        and (s.mode != MODE_RUNNING or (s.cycle_run_min > 0 and s.bag_run_min > 0))
        and (s.mode != MODE_NO_PATIENT or (
            s.cycle == 0 and s.phase == PHASE_INFUSION and s.cycle_run_min == 0
            and s.step_run_min == 0 and s.low_left_min == 0 and s.int_start_min == -1
            and s.bag_loaded == 0 and not _holding(s) and s.decision_pending == 0 and s.locked == 0
            and s.cycle_ask == 0))
        and ((s.bag_loaded == 0 and s.bag_id == 0)
             or (s.bag_loaded == 1 and s.bag_id >= 1 and s.bag_id == s.last_bag_id))
        and (s.bag_loaded == 1 or (
            s.bag_duration_min == 0 and s.bag_run_min == 0 and s.bag_room_min == 0
            and s.bag_room_limit_min == 0 and s.bag_volume_ul == 0 and s.bag_ul == 0
            and s.bag_ng == 0 and s.acc_ng == 0 and s.acc_ul == 0))
        and (s.bag_loaded == 0 or (
            s.bag_volume_ul >= BAG_VOLUME_MIN_UL                # EXT-rates: the order's division is by it
            and s.bag_run_min <= s.bag_duration_min and s.bag_room_min < s.bag_room_limit_min
            and s.bag_ul <= s.bag_volume_ul
            and (((s.bag_duration_min == 1440 or s.bag_duration_min == 2880) and s.bag_room_limit_min == ROOM_24_48_MIN)
                 or ((s.bag_duration_min == 4320 or s.bag_duration_min == 5760) and s.bag_room_limit_min == ROOM_72_96_MIN)
                 or (s.bag_duration_min == 10080 and s.bag_room_limit_min == ROOM_7D_MIN))))
        and MIN_PER_DAY * s.bag_ng + s.acc_ng <= CAP_FULL_NG_PER_DAY * s.bag_run_min
        and s.int_start_min <= s.now_min
        and (s.reinit_needed == 0 or (s.need_premed == 1 and s.need_supervision == 1))
        and (s.premed_acked == 0 or (s.premed_ack_min >= 0 and s.premed_ack_min <= s.now_min))
        and s.booked_min <= s.now_min
        and (s.booked_min != s.now_min or (s.bag_run_min > 0 and s.cycle_run_min > 0))
        and (s.mode != MODE_STOPPED or s.int_start_min < 0 or s.booked_min != s.now_min
             or s.int_start_min == s.now_min)
        and (s.bag_loaded == 1 or s.booked_min == -1)
        and (s.mode != MODE_RUNNING or s.booked_min >= 0)
        and (not (s.mode == MODE_STOPPED and s.int_start_min >= 0 and s.phase == PHASE_INFUSION
                  and s.cycle_run_min > 0) or s.now_min - s.int_start_min <= NEW_CYCLE_MIN
             or (s.int_rx == 0 and not _holding(s) and (s.cycle_ask == 1 or s.int_decided == 1)))
        # -- L2.4-new-cycle: the clinician is asked only about an open interruption of a cycle begun
        and (s.cycle_ask == 0 or (s.mode == MODE_STOPPED and s.int_start_min >= 0
                                  and s.phase == PHASE_INFUSION and s.cycle_run_min > 0))
        # -- Table 4 holds: each kind's grades, and its clocks never in the future
        and (s.rx_crs == 0 or s.rx_crs == 3)
        and (s.rx_icans == 0 or s.rx_icans == 2 or s.rx_icans == 3)
        and (s.rx_neuro == 0 or s.rx_neuro == 3)
        and (s.rx_seizure == 0 or s.rx_seizure == 3)
        and (s.rx_other == 0 or s.rx_other == 3 or s.rx_other == 4)
        and (s.decision_pending == 0 or s.rx_other == 4)
        and s.rx_icans_onset_min <= s.now_min and s.rx_icans_g3_min <= s.now_min
        and s.rx_neuro_onset_min <= s.now_min and s.rx_neuro_g3_min <= s.now_min
        and s.rx_seizure_onset_min <= s.now_min and s.rx_seizure_g3_min <= s.now_min
        and s.rx_other_onset_min <= s.now_min
        # -- clock (L2-reinit-4h): an open interruption of 4 h or more, or of unknown length,
        # always has re-initiation pending; a latched fault keeps its interruption unknown
        and (not (s.mode == MODE_STOPPED and s.int_start_min >= 0
                  and (s.now_min - s.int_start_min >= REINIT_MIN or s.int_unknown == 1))
             or s.reinit_needed == 1)
        and (s.fault == 0 or s.int_start_min < 0 or s.int_unknown == 1)
    )
