"""The kernel's safety properties: ID, English statement, label clause IDs, formula.

Every property is a conjunction of named checks, written once in Python over a pre-state,
a post-state and the step (entry point, its inputs, its return value). The same code gives
the Z3 formula (fields and inputs are Z3 terms) and the concrete verdict on a replayed trace
(fields are ints): the operators come from `L`, which folds Python values and builds Z3
terms otherwise.

- *state checks* are over one state: the verifier proves them for the post-state of every
  transition from a reachable state, assumes them of the pre-state (ordinary induction), and
  checks them in the initial state `State()`;
- *step checks* are over a transition (pre, post, step).

The numbers below come from the label (LABEL.md), not from the kernel's constants, so a
kernel whose constant drifts from the label (REINIT_MIN = 241) is caught. The codes (modes,
phases, indications, reaction kinds, alarm bits) are the kernel's documented field domains.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import z3

# ---- field domains (kernel encoding) ----
NO_PATIENT, STOPPED, RUNNING = 0, 1, 2
INFUSION, FREE, DONE = 0, 1, 2
MRD, RR, CONS = 1, 2, 3
RX_NONE, RX_CRS, RX_NEURO, RX_ICANS, RX_SEIZURE, RX_OTHER = 0, 1, 2, 3, 4, 5
SCALE_CTCAE, SCALE_ASTCT = 1, 2      # L2.4-grading
OK = 0
E_FAULT = 23                         # the kernel's status: a fault is latched
E_DECISION = 20                      # the kernel's status: a clinician decision comes first
E_SCALE = 27                         # the kernel's status: the grade's scale is not the label's
AL_CAP, AL_BAG_EXPIRED, AL_POWER, AL_FAULT, AL_REINIT, AL_LOCKED = 1, 4, 8, 16, 32, 64
COUNTER_MAX = 1000000000             # kernel totals saturate here (documented in the kernel)

# ---- label numbers in kernel units ----
MIN_PER_DAY = 1440
CAP_FULL = 28000                     # L2-dose-28: 28 mcg/day
CAP_STEP = 9000                      # L2.2-step, L2.4-restart-9: 9 mcg/day
WEIGHT_FIXED_G = 45000               # L2-weight-45
WEIGHT_PRESERVATIVE_MIN_G = 5400     # L2.5-min-weight
REINIT_MIN = 240                     # L2-reinit-4h
PREMED_WINDOW_MIN = 60               # L2-premed: "within 1 hour prior" / "1 hour prior"
OVERDOSE_WAIT_MIN = 720              # EXT-overdose-12h
CYCLE_INFUSION_MIN = 40320           # L2-cycle-42: 28 days
FREE_SHORT_MIN = 20160               # L2-cycle-42: 14 days
FREE_LONG_MIN = 80640                # L2.2-cycle-84: 56 days
RR_FIRST_CONTINUED_CYCLE = 6         # L2.2-cycle-84: cycles 6-9
STEP_WINDOW_MIN = 10080              # L2.2-step: days 1-7
RESTART_LOW_MIN = 10080              # L2.4-restart-9: 7 days
NEW_CYCLE_MIN = 10080                # L2.4-resume-7d / L2.4-new-cycle: 7 days
NEURO3_MIN_WITHHOLD_MIN = 4320       # L2.4-neuro-3: at least 3 days
NEURO3_MAX_RESOLVE_MIN = 10080       # L2.4-neuro-3: more than 7 days -> permanent
OTHER3_MAX_RESOLVE_MIN = 20160       # L2.4-other-3: more than 14 days -> permanent
MAX_CYCLES = {MRD: 4, RR: 9}            # L2.1-course, L2.2-course
CONS_CYCLES_MAX = 9                      # L2.3-course: the site's count, 1..9 (no label number)
BAG_DRUG_MAX_NG = 392000                 # the kernel's documented plausibility bound (overfill included)
RATE_UL_PER_H = {24: 10000, 48: 5000, 72: 1800, 96: 1800, 168: 600}       # EXT-rates, the site's table
DURATIONS_H = (24, 48, 72, 96, 168)      # L2.5-durations
ROOM_LIMIT_MIN = {24: 2880, 48: 2880, 72: 5760, 96: 5760, 168: 10080}      # L2.6-bag-*
FRIDGE_LIMIT_MIN = {24: 11520, 48: 11520, 72: 20160, 96: 20160, 168: 20160}


# ------------------------------------------------------------------ logic that folds
def _py(x: Any) -> bool:
    return not isinstance(x, z3.ExprRef)


def _zb(x: Any) -> Any:
    return z3.BoolVal(bool(x)) if _py(x) else x


def _zi(x: Any) -> Any:
    return z3.IntVal(int(x)) if _py(x) else x


class L:
    """Boolean and arithmetic operators over Python values or Z3 terms."""

    @staticmethod
    def And(*xs: Any) -> Any:
        out = []
        for x in xs:
            if _py(x):
                if not x:
                    return False
            else:
                out.append(x)
        return True if not out else (out[0] if len(out) == 1 else z3.And(*out))

    @staticmethod
    def Or(*xs: Any) -> Any:
        out = []
        for x in xs:
            if _py(x):
                if x:
                    return True
            else:
                out.append(x)
        return False if not out else (out[0] if len(out) == 1 else z3.Or(*out))

    @staticmethod
    def Not(x: Any) -> Any:
        return (not x) if _py(x) else z3.Not(x)

    log: list[Any] | None = None     # when a list, every antecedent is appended (verify/vacuity.py)

    @staticmethod
    def Implies(a: Any, b: Any) -> Any:
        if L.log is not None:
            L.log.append(a)
        if _py(a):
            return b if a else True
        if _py(b):
            return True if b else z3.Not(a)
        return z3.Implies(a, b)

    @staticmethod
    def If(c: Any, a: Any, b: Any) -> Any:
        if _py(c):
            return a if c else b
        if _py(a) and _py(b) and isinstance(a, bool) and isinstance(b, bool):
            return z3.If(c, _zb(a), _zb(b))
        if (not _py(a) and z3.is_bool(a)) or (not _py(b) and z3.is_bool(b)):
            return z3.If(c, _zb(a), _zb(b))
        return z3.If(c, _zi(a), _zi(b))

    @staticmethod
    def div(a: Any, c: int) -> Any:
        return a // c if _py(a) else a / c

    @staticmethod
    def ceil_div(a: Any, b: Any) -> Any:
        """ceil(a / b) for b > 0; b may be a term (a bag's volume: EXT-rates)."""
        if _py(a) and _py(b):
            return -(-a // b) if b > 0 else 0       # b is 0 only where another entry point ran
        return (_zi(a) + _zi(b) - 1) / _zi(b)

    @staticmethod
    def mod(a: Any, c: int) -> Any:
        return a % c

    @staticmethod
    def min(a: Any, b: Any) -> Any:
        if _py(a) and _py(b):
            return min(a, b)
        return z3.If(_zi(b) < _zi(a), _zi(b), _zi(a))

    @staticmethod
    def max(a: Any, b: Any) -> Any:
        if _py(a) and _py(b):
            return max(a, b)
        return z3.If(_zi(b) > _zi(a), _zi(b), _zi(a))

    @staticmethod
    def In(x: Any, values: Any) -> Any:
        return L.Or(*[x == v for v in values])

    @staticmethod
    def bit(x: Any, value: int) -> Any:
        """True when alarm bit `value` (a power of two) is set in x (x >= 0)."""
        if _py(x):
            return (x // value) % 2 == 1
        from .symexec import bit_of
        return bit_of(x, value.bit_length() - 1)


class S:
    """A state: attribute access to its fields (ints or Z3 terms)."""

    def __init__(self, fields: dict[str, Any]):
        self.__dict__["_f"] = fields

    def __getattr__(self, name: str) -> Any:
        try:
            return self._f[name]
        except KeyError:
            raise AttributeError("the kernel's State has no field %r (a property needs it)" % name) from None


class Step:
    """The step between two states: which entry point, with which inputs, returning what.

    In a per-entry query `entry` is a Python string; `is_(name)` is then a Python bool, and
    `arg(entry, name)` is the input (or 0 when another entry point ran: it is then only used
    under an implication that is already true). When the formula is rendered for all entry
    points at once, `is_` is a Z3 Bool `entry==name` and inputs are named `entry.param`.
    """

    def __init__(self, entry: str | None, args: dict[str, Any], ret: Any):
        self.entry = entry
        self.args = args
        self.ret = ret

    def is_(self, name: str) -> Any:
        if self.entry is None:
            return z3.Bool("entry==%s" % name)
        return self.entry == name

    def arg(self, entry: str, name: str) -> Any:
        if self.entry is None:
            return z3.Int("%s.%s" % (entry, name))
        if self.entry != entry:
            return 0
        if name not in self.args:
            raise KeyError("entry point %s has no parameter %r (a property needs it)" % (entry, name))
        return self.args[name]


@dataclass
class Check:
    text: str
    fn: Callable[..., Any]


@dataclass
class Property:
    id: str
    statement: str
    clauses: list[str]
    state: list[Check] = field(default_factory=list)     # fn(s)
    step: list[Check] = field(default_factory=list)      # fn(pre, post, st)
    special: str | None = None                           # 'invariant', 'relation' or 'obligations': built by the engine
    product: bool = False                                # over the kernel x label observer (verify/product.py)

    def state_terms(self, s: S) -> list[tuple[str, Any]]:
        return [(c.text, c.fn(s)) for c in self.state]

    def step_terms(self, pre: S, post: S, st: Step) -> list[tuple[str, Any]]:
        out = [(c.text, c.fn(pre, post, st)) for c in self.step]
        out += [("post: " + c.text, c.fn(post)) for c in self.state]
        return out

    def holds(self, pre: S, post: S, st: Step) -> Any:
        return L.And(*[t for _, t in self.step_terms(pre, post, st)])

    def failing(self, pre: S, post: S, st: Step) -> list[str]:
        """Concrete evaluation: the texts of the checks that fail."""
        return [text for text, t in self.step_terms(pre, post, st) if not t]

    def failing_state(self, s: S) -> list[str]:
        return [text for text, t in self.state_terms(s) if not t]


# ------------------------------------------------------------------ shared terms
def _kernel_fields(s: S) -> list[str]:
    """The kernel's fields of a state (a product state also has the observer's, o_*)."""
    return [f for f in s._f if not f.startswith("o_")]


def running(s: S) -> Any:
    return s.mode == RUNNING


def delivered(pre: S, post: S, st: Step) -> Any:
    """A minute was booked in this step: a tick while running, or an accepted start (which books
    the first minute before the motor runs it), that counted an infusion minute (a start that
    begins a new cycle counts the new cycle's first minute)."""
    return L.And(L.Or(L.And(st.is_("tick"), pre.mode == RUNNING), accepted(st, "start")),
                 L.Or(post.cycle_run_min == pre.cycle_run_min + 1,
                      L.And(accepted(st, "start"), post.cycle == pre.cycle + 1, post.cycle_run_min == 1)))


def minutes_spent(pre: S) -> Any:
    """What the minutes booked so far complete (checked at the next tick, once they have run):
    the cycle's 28 days, the bag's duration, its room-temperature limit (the tick adds one
    minute) or its volume; or the next minute would take more than the bag holds; or the bag was
    hung in a low-dose window that has closed (L2.2-step, L2.4-restart-9)."""
    return L.Or(pre.cycle_run_min >= CYCLE_INFUSION_MIN, pre.bag_run_min >= pre.bag_duration_min,
                pre.bag_room_min + 1 >= pre.bag_room_limit_min, pre.bag_ul >= pre.bag_volume_ul,
                pre.bag_ul + L.div(pre.acc_ul + pre.bag_ul_per_h, 60) > pre.bag_volume_ul,
                L.And(pre.bag_in_window == 1, L.Not(window_open(pre))))


def started(pre: S, post: S) -> Any:
    return L.And(pre.mode != RUNNING, post.mode == RUNNING)


def interruption_open(s: S) -> Any:
    return L.And(s.mode == STOPPED, s.int_start_min >= 0)


def window_open(s: S) -> Any:
    return L.Or(L.And(s.indication == RR, s.step_run_min < STEP_WINDOW_MIN), s.low_left_min > 0)


def accepted(st: Step, entry: str) -> Any:
    return L.And(st.is_(entry), st.ret == OK)


def hung(pre: S, st: Step) -> Any:
    """A new bag was accepted: its identity is above every bag hung for this patient (the
    loaded bag's order re-sent is accepted too, and changes nothing)."""
    return L.And(accepted(st, "bag"), st.arg("bag", "bag_id") > pre.last_bag_id)


def _by_duration(d: Any, table: dict[int, int]) -> Any:
    out: Any = table[168]
    for h in (96, 72, 48, 24):
        out = L.If(d == h, table[h], out)
    return out


def holding(s: S) -> Any:
    """A Table 4 hold of some kind is open (each kind has its own: CRS, ICANS, neurologic event,
    seizure, other)."""
    return L.Or(s.rx_crs != 0, s.rx_icans != 0, s.rx_neuro != 0, s.rx_seizure != 0, s.rx_other != 0)


# the grade-3 neurologic holds (L2.4-neuro-3): (kind, grade field, onset field, grade-3 entry field)
NEURO3_HOLDS = ((RX_ICANS, "rx_icans", "rx_icans_onset_min", "rx_icans_g3_min"),
                (RX_NEURO, "rx_neuro", "rx_neuro_onset_min", "rx_neuro_g3_min"),
                (RX_SEIZURE, "rx_seizure", "rx_seizure_onset_min", "rx_seizure_g3_min"))
HOLD_FIELD = {RX_CRS: "rx_crs", RX_ICANS: "rx_icans", RX_NEURO: "rx_neuro", RX_SEIZURE: "rx_seizure",
              RX_OTHER: "rx_other"}


def ended(st: Step) -> Any:
    """The therapy was ended (END_THERAPY): the record of this patient is archived by the
    controller, the kernel starts again with no patient."""
    return accepted(st, "end_therapy")


def _scale_ok(kind: Any, scale: Any) -> Any:
    return L.Or(scale == SCALE_CTCAE, L.And(kind == RX_ICANS, scale == SCALE_ASTCT))


def _conservation(pre: S, post: S, st: Step) -> Any:
    dc = post.course_ng - pre.course_ng
    due = pre.acc_ng + pre.bag_ng_per_day
    carried = 1440 * dc + (post.acc_ng - pre.acc_ng) == pre.bag_ng_per_day
    discarded = L.And(post.bag_loaded == 0, post.acc_ng == 0, 1440 * dc <= due, due - 1440 * dc < 1440)
    return L.Implies(L.And(delivered(pre, post, st), post.course_ng < COUNTER_MAX), L.Or(carried, discarded))


# ------------------------------------------------------------------ the properties
def _exact(id: str, statement: str, clauses: list[str], step: list[tuple[str, Callable[..., Any]]]) -> Property:
    return Property(id, statement, clauses, [], [Check(t, f) for t, f in step], product=True)


def _p(id: str, statement: str, clauses: list[str], state: list[tuple[str, Callable[..., Any]]] = (),  # type: ignore[assignment]
       step: list[tuple[str, Callable[..., Any]]] = ()) -> Property:  # type: ignore[assignment]
    return Property(id, statement, clauses, [Check(t, f) for t, f in state], [Check(t, f) for t, f in step])


PROPERTIES: list[Property] = [
    _p("rate-cap",
       "While the motor runs, the bag's drug rate is at most the cap in force; the cap in force is at most "
       "28 mcg/day and at most the patient's full cap; the low (step/restart) cap is at most 9 mcg/day.",
       ["L2-dose-28", "L2.2-step", "L2.4-restart-9"],
       state=[
           ("running -> bag_ng_per_day <= cap_ng_per_day", lambda s: L.Implies(running(s), s.bag_ng_per_day <= s.cap_ng_per_day)),
           ("cap_ng_per_day <= 28000", lambda s: s.cap_ng_per_day <= CAP_FULL),
           ("cap_ng_per_day <= cap_full_ng_per_day", lambda s: s.cap_ng_per_day <= s.cap_full_ng_per_day),
           ("cap_full_ng_per_day <= 28000", lambda s: s.cap_full_ng_per_day <= CAP_FULL),
           ("cap_low_ng_per_day <= 9000", lambda s: s.cap_low_ng_per_day <= CAP_STEP),
       ]),
    _p("daily-cap",
       "No bolus, no flush, no catch-up: per step the drug delivered (the increase of course_ng) is at most the "
       "minute's quantum floor((acc_ng + bag_ng_per_day) / 1440) and is zero unless the motor was running; a "
       "delivered minute conserves drug exactly (1440 * delta(course_ng) + delta(acc_ng) == bag_ng_per_day, or the "
       "remainder is discarded with the bag); otherwise course_ng is unchanged and the remainder is kept or "
       "discarded; flush changes nothing; the 24 h window total stays within the highest cap in force "
       "(day_ng <= day_cap_ng <= 28000).",
       ["L2-dose-28", "EXT-no-flush"],
       state=[
           ("0 <= day_ng <= day_cap_ng <= 28000", lambda s: L.And(s.day_ng >= 0, s.day_ng <= s.day_cap_ng, s.day_cap_ng <= CAP_FULL)),
           ("0 <= acc_ng < 1440", lambda s: L.And(s.acc_ng >= 0, s.acc_ng < MIN_PER_DAY)),
       ],
       step=[
           ("0 <= delta(course_ng) <= floor((acc_ng + bag_ng_per_day) / 1440), unless the therapy was ended",
            lambda pre, post, st: L.Implies(L.Not(ended(st)), L.And(
                post.course_ng >= pre.course_ng,
                post.course_ng - pre.course_ng <= L.div(pre.acc_ng + pre.bag_ng_per_day, MIN_PER_DAY)))),
           ("motor not running before the step -> delta(course_ng) == 0, unless a start booked its first minute "
            "or the therapy was ended (a new patient's record starts at 0)",
            lambda pre, post, st: L.Implies(L.And(pre.mode != RUNNING, L.Not(accepted(st, "start")), L.Not(ended(st))),
                                            post.course_ng == pre.course_ng)),
           ("therapy ended -> it was stopped, and nothing is running",
            lambda pre, post, st: L.Implies(ended(st), L.And(pre.mode == STOPPED, post.mode == NO_PATIENT,
                                                             post.motor_ul_per_h == 0))),
           ("delivered minute -> 1440*delta(course_ng) + delta(acc_ng) == bag_ng_per_day (or remainder discarded with the bag)",
            _conservation),
           ("no minute delivered (therapy not ended) -> delta(course_ng) == 0 and acc_ng kept or discarded",
            lambda pre, post, st: L.Implies(L.And(L.Not(delivered(pre, post, st)), L.Not(ended(st))),
                                            L.And(post.course_ng == pre.course_ng,
                                                  L.Or(post.acc_ng == pre.acc_ng, post.acc_ng == 0)))),
           ("tick -> the 24 h window advances one minute (day_min + 1 mod 1440)",
            lambda pre, post, st: L.Implies(st.is_("tick"), post.day_min == L.mod(pre.day_min + 1, MIN_PER_DAY))),
           ("flush changes no field",
            lambda pre, post, st: L.Implies(st.is_("flush"), L.And(*[post._f[f] == pre._f[f] for f in _kernel_fields(pre)]))),
       ]),
    _p("constant-rate",
       "While running, the motor's flow equals the bag's flow; a running pump's bag rates (uL/h and ng/day) never "
       "change; the bag rates change only when a new bag is accepted (bag_seq increments) or the bag is unloaded "
       "(rates 0); an accepted bag runs at the rate on its label, which is the site's rate for its duration "
       "(EXT-rates: 10, 5, 1.8, 1.8, 0.6 mL/h for 24, 48, 72, 96, 168 h), never at volume / duration, and fits in "
       "the bag (rate x duration <= volume); its daily drug rate is its concentration times the volume it infuses "
       "a day, ceil(drug_ng * rate * 24 / volume_ul): the overfill is never given.",
       ["L2-constant-rate", "EXT-rates"],
       state=[
           ("running -> motor_ul_per_h == bag_ul_per_h", lambda s: L.Implies(running(s), s.motor_ul_per_h == s.bag_ul_per_h)),
           ("not running -> motor_ul_per_h == 0", lambda s: L.Implies(L.Not(running(s)), s.motor_ul_per_h == 0)),
       ],
       step=[
           ("running before and after -> bag rates and bag_seq unchanged",
            lambda pre, post, st: L.Implies(L.And(running(pre), running(post)),
                                            L.And(post.bag_ul_per_h == pre.bag_ul_per_h,
                                                  post.bag_ng_per_day == pre.bag_ng_per_day,
                                                  post.bag_seq == pre.bag_seq))),
           ("bag rates change -> new bag accepted (bag_seq increments) or bag unloaded (rates 0)",
            lambda pre, post, st: L.Implies(L.Or(post.bag_ul_per_h != pre.bag_ul_per_h, post.bag_ng_per_day != pre.bag_ng_per_day),
                                            L.Or(L.And(accepted(st, "bag"),
                                                       L.Or(post.bag_seq == pre.bag_seq + 1, pre.bag_seq == COUNTER_MAX)),
                                                 L.And(post.bag_loaded == 0, post.bag_ul_per_h == 0, post.bag_ng_per_day == 0)))),
           ("bag_seq changes -> a bag was accepted",
            lambda pre, post, st: L.Implies(post.bag_seq != pre.bag_seq, accepted(st, "bag"))),
           ("accepted bag -> bag_ul_per_h == the labelled rate == the table rate for its duration, and "
            "rate x duration <= bag volume",
            lambda pre, post, st: L.Implies(hung(pre, st), L.Or(*[
                L.And(st.arg("bag", "duration_h") == h, st.arg("bag", "rate_ul_per_h") == RATE_UL_PER_H[h],
                      post.bag_ul_per_h == RATE_UL_PER_H[h], RATE_UL_PER_H[h] * h <= st.arg("bag", "volume_ul"))
                for h in DURATIONS_H]))),
           ("accepted bag -> bag_ng_per_day == ceil(drug_ng * rate * 24 / volume_ul) (concentration x volume a day)",
            lambda pre, post, st: L.Implies(hung(pre, st), L.Or(*[
                L.And(st.arg("bag", "duration_h") == h,
                      post.bag_ng_per_day == L.ceil_div(st.arg("bag", "drug_ng") * (RATE_UL_PER_H[h] * 24),
                                                        st.arg("bag", "volume_ul")))
                for h in DURATIONS_H]))),
           ("a bag order whose rate is not the table's for its duration is refused",
            lambda pre, post, st: L.Implies(L.And(st.is_("bag"), st.arg("bag", "bag_id") > pre.last_bag_id, L.And(*[
                L.Implies(st.arg("bag", "duration_h") == h, st.arg("bag", "rate_ul_per_h") != RATE_UL_PER_H[h])
                for h in DURATIONS_H])), st.ret != OK)),
       ]),
    _p("reinit",
       "Only `start` starts the motor. No transition from stopped to running while an interruption of 4 h or more "
       "(now_min - int_start_min >= 240) or of unknown length is open, unless premedication and supervision were "
       "acknowledged, the premedication within the hour before the start; no step dose in R/R without "
       "premedication; an unknown outage or a fault leaves the "
       "interruption open and of unknown length.",
       ["L2-reinit-4h", "L2-premed"],
       step=[
           ("motor starts -> the entry point is start",
            lambda pre, post, st: L.Implies(started(pre, post), st.is_("start"))),
           ("stopped -> running with an interruption >= 240 min or unknown -> premed and supervision acknowledged",
            lambda pre, post, st: L.Implies(
                L.And(pre.mode == STOPPED, post.mode == RUNNING, pre.int_start_min >= 0,
                      L.Or(pre.now_min - pre.int_start_min >= REINIT_MIN, pre.int_unknown == 1)),
                L.And(pre.premed_acked == 1, pre.now_min - pre.premed_ack_min <= PREMED_WINDOW_MIN,
                      pre.supervision_acked == 1))),
           ("start of an R/R bag above the step cap before the step premedication -> premed acknowledged",
            lambda pre, post, st: L.Implies(
                L.And(started(pre, post), pre.indication == RR, pre.step_premed_done == 0,
                      pre.bag_ng_per_day > pre.cap_low_ng_per_day),
                L.And(pre.premed_acked == 1, pre.now_min - pre.premed_ack_min <= PREMED_WINDOW_MIN))),
           ("a start that needs premedication counts it only if acknowledged within the hour before",
            lambda pre, post, st: L.Implies(L.And(started(pre, post), pre.need_premed == 1),
                                            L.And(pre.premed_acked == 1,
                                                  pre.now_min - pre.premed_ack_min <= PREMED_WINDOW_MIN))),
           ("every stop of the motor opens an interruption (int_start_min >= 0), unless the cycle's 28 days ended",
            lambda pre, post, st: L.Implies(L.And(running(pre), L.Not(running(post))),
                                            L.Or(post.int_start_min >= 0, post.phase == FREE))),
           ("acknowledgement accepted -> recorded",
            lambda pre, post, st: L.Implies(accepted(st, "ack"), L.Or(
                L.And(st.arg("ack", "what") == 1, post.premed_acked == 1),
                L.And(st.arg("ack", "what") == 2, post.supervision_acked == 1)))),
           ("unknown outage or fault while running or interrupted -> interruption open and of unknown length",
            lambda pre, post, st: L.Implies(
                L.And(L.Or(L.And(st.is_("power_up"), st.arg("power_up", "outage_min") == -1, st.ret == OK), st.is_("fault")),
                      L.Or(running(pre), interruption_open(pre))),
                L.And(post.int_start_min >= 0, post.int_unknown == 1))),
       ]),
    _p("delivery",
       "No silent underdose: an accepted start books the first minute's quantum; a tick while the motor runs "
       "books the next minute's quantum at the bag's rate, unless the minutes booked so far completed the cycle, "
       "the bag's duration, its room-temperature limit or its volume (the motor stops), or the 24-hour guard stops "
       "the motor with the cap alarm because the window's total plus the quantum would exceed the cap in force.",
       ["L2.5-errors", "L2-constant-rate"],
       step=[
           ("accepted start -> the first minute is booked, or the minute already booked in this kernel minute "
            "(cut short by a stop) goes on",
            lambda pre, post, st: L.Implies(accepted(st, "start"), L.And(running(post), L.Or(
                delivered(pre, post, st),
                L.And(pre.booked_min == pre.now_min, post.course_ng == pre.course_ng))))),
           ("running tick -> minute delivered, or the booked minutes ended (motor stopped), or stopped by the "
            "24 h guard with AL_CAP",
            lambda pre, post, st: L.Implies(L.And(st.is_("tick"), running(pre)), L.Or(
                delivered(pre, post, st),
                L.And(minutes_spent(pre), L.Not(running(post))),
                L.And(L.Not(running(post)), L.bit(post.alarm, AL_CAP),
                      L.If(pre.day_min + 1 >= MIN_PER_DAY, 0, pre.day_ng)
                      + L.div(pre.acc_ng + pre.bag_ng_per_day, MIN_PER_DAY) > post.day_cap_ng)))),
           ("delivered minute -> course_ng grows by the quantum (unless saturated)",
            lambda pre, post, st: L.Implies(L.And(delivered(pre, post, st), post.course_ng < COUNTER_MAX),
                                            post.course_ng - pre.course_ng
                                            == L.div(pre.acc_ng + pre.bag_ng_per_day, MIN_PER_DAY))),
       ]),
    _p("step-restart",
       "No running above the low cap (9 mcg/day or 5 mcg/m2/day) while R/R and step_run_min < 10080, or while "
       "low_left_min > 0; the cap in force is the low cap exactly while either window is open; a resolved "
       "reaction restarts the 7-day low-dose window; both windows count delivered infusion minutes only; a bag "
       "hung while a window is open ends when the window ends.",
       ["L2.2-step", "L2.4-restart-9"],
       state=[
           ("running and a window open -> bag_ng_per_day <= cap_low_ng_per_day",
            lambda s: L.Implies(L.And(running(s), window_open(s)), s.bag_ng_per_day <= s.cap_low_ng_per_day)),
           ("cap_ng_per_day == (window open ? cap_low : cap_full)",
            lambda s: s.cap_ng_per_day == L.If(window_open(s), s.cap_low_ng_per_day, s.cap_full_ng_per_day)),
       ],
       step=[
           ("resolved accepted -> low_left_min == 10080",
            lambda pre, post, st: L.Implies(accepted(st, "resolved"), post.low_left_min == RESTART_LOW_MIN)),
           ("step_run_min changes only at setup or the end of therapy (to 0) or by one delivered R/R minute",
            lambda pre, post, st: L.Implies(post.step_run_min != pre.step_run_min,
                                            L.Or(L.And(L.Or(st.is_("setup"), ended(st)), post.step_run_min == 0),
                                                 L.And(delivered(pre, post, st), pre.indication == RR,
                                                       post.step_run_min == pre.step_run_min + 1)))),
           ("a delivered R/R minute in the step window is counted",
            lambda pre, post, st: L.Implies(L.And(delivered(pre, post, st), pre.indication == RR,
                                                  pre.step_run_min < STEP_WINDOW_MIN),
                                            post.step_run_min == pre.step_run_min + 1)),
           ("a bag hung in a low-dose window is unloaded by the tick after the window's last minute ran: "
            "it never runs into the days of the full dose (L2.5-errors)",
            lambda pre, post, st: L.Implies(L.And(st.is_("tick"), pre.bag_loaded == 1, pre.bag_in_window == 1,
                                                  L.Not(window_open(pre))),
                                            L.Or(post.bag_loaded == 0, post.bag_seq != pre.bag_seq))),
           ("a bag accepted while a low-dose window is open is marked as hung in it",
            lambda pre, post, st: L.Implies(L.And(hung(pre, st), window_open(pre)), post.bag_in_window == 1)),
           ("low_left_min decreases only by one delivered minute (or to 0 when the therapy is ended)",
            lambda pre, post, st: L.Implies(L.And(post.low_left_min < pre.low_left_min, L.Not(ended(st))),
                                            L.And(delivered(pre, post, st), post.low_left_min == pre.low_left_min - 1))),
       ]),
    _p("bag-limits",
       "Never running without a bag, beyond its infusion duration or beyond its room-temperature limit (storage "
       "includes infusion); a loaded bag's duration is 24, 48, 72, 96 or 168 h with the matching room-temperature "
       "limit; an accepted bag is for this patient, has a valid duration, a preservative exactly for 72 h and longer, "
       "no preservative bag for a patient under 5.4 kg, and is within its fridge and room-temperature limits; the "
       "room-temperature clock runs every minute and through known outages; a bag whose outage is unknown is discarded; "
       "a bag once hung (its identity from the pharmacy label) never starts its clocks again: the loaded bag's order "
       "sent again changes nothing, any other identity not above the last one hung is refused.",
       ["L2.5-durations", "L2.5-min-weight", "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-7d", "L2.5-errors"],
       state=[
           ("running -> bag_loaded == 1", lambda s: L.Implies(running(s), s.bag_loaded == 1)),
           ("bag_run_min <= bag_duration_min", lambda s: s.bag_run_min <= s.bag_duration_min),
           ("running -> bag_room_min < bag_room_limit_min", lambda s: L.Implies(running(s), s.bag_room_min < s.bag_room_limit_min)),
           ("bag loaded -> bag_ul <= bag_volume_ul", lambda s: L.Implies(s.bag_loaded == 1, s.bag_ul <= s.bag_volume_ul)),
           ("bag loaded -> (duration, room limit) in {(24 h, 48 h), (48 h, 48 h), (72 h, 4 d), (96 h, 4 d), (7 d, 7 d)}",
            lambda s: L.Implies(s.bag_loaded == 1, L.Or(*[
                L.And(s.bag_duration_min == 60 * h, s.bag_room_limit_min == ROOM_LIMIT_MIN[h]) for h in DURATIONS_H]))),
           ("no bag -> bag rates 0", lambda s: L.Implies(s.bag_loaded == 0, L.And(s.bag_ng_per_day == 0, s.bag_ul_per_h == 0))),
       ],
       step=[
           ("accepted bag -> a new identity above every bag hung for this patient, loaded with it; or the "
            "loaded bag's order sent again, which changes nothing (its clocks go on)",
            lambda pre, post, st: L.Implies(accepted(st, "bag"), L.Or(
                L.And(st.arg("bag", "bag_id") > pre.last_bag_id, post.bag_id == st.arg("bag", "bag_id"),
                      post.last_bag_id == st.arg("bag", "bag_id")),
                L.And(pre.bag_loaded == 1, st.arg("bag", "bag_id") == pre.bag_id,
                      *[post._f[f] == pre._f[f] for f in _kernel_fields(pre)])))),
           ("the highest bag identity hung never goes down while the patient is set up (the next patient's "
            "bags count from 0)",
            lambda pre, post, st: L.Implies(L.And(pre.mode != NO_PATIENT, L.Not(ended(st))),
                                            post.last_bag_id >= pre.last_bag_id)),
           ("accepted bag -> duration in {24, 48, 72, 96, 168} h",
            lambda pre, post, st: L.Implies(hung(pre, st), L.In(st.arg("bag", "duration_h"), DURATIONS_H))),
           ("accepted bag -> preservative == 1 exactly when duration >= 72 h",
            lambda pre, post, st: L.Implies(hung(pre, st), L.Or(
                L.And(st.arg("bag", "preservative") == 1, st.arg("bag", "duration_h") >= 72),
                L.And(st.arg("bag", "preservative") == 0, st.arg("bag", "duration_h") <= 48)))),
           ("accepted preservative bag -> weight_g >= 5400",
            lambda pre, post, st: L.Implies(L.And(hung(pre, st), st.arg("bag", "preservative") == 1),
                                            pre.weight_g >= WEIGHT_PRESERVATIVE_MIN_G)),
           ("accepted bag -> for this patient, pump stopped and not locked",
            lambda pre, post, st: L.Implies(hung(pre, st), L.And(
                st.arg("bag", "patient_id") == pre.patient_id, pre.mode == STOPPED, pre.locked == 0))),
           ("accepted bag -> 0 <= fridge_min <= fridge limit and 0 <= room_min, room_min + duration <= room limit",
            lambda pre, post, st: L.Implies(hung(pre, st), L.And(
                st.arg("bag", "fridge_min") >= 0, st.arg("bag", "room_min") >= 0,
                st.arg("bag", "fridge_min") <= _by_duration(st.arg("bag", "duration_h"), FRIDGE_LIMIT_MIN),
                st.arg("bag", "room_min") + 60 * st.arg("bag", "duration_h")
                <= _by_duration(st.arg("bag", "duration_h"), ROOM_LIMIT_MIN)))),
           ("accepted bag -> 1 <= drug_ng <= 392000 and 10 mL <= volume <= 1 L (kernel's documented plausibility)",
            lambda pre, post, st: L.Implies(hung(pre, st), L.And(
                st.arg("bag", "drug_ng") >= 1, st.arg("bag", "drug_ng") <= BAG_DRUG_MAX_NG,
                st.arg("bag", "volume_ul") >= 10000, st.arg("bag", "volume_ul") <= 1000000))),
           ("accepted bag -> loaded with its room time and duration",
            lambda pre, post, st: L.Implies(hung(pre, st), L.And(
                post.bag_loaded == 1, post.bag_room_min == st.arg("bag", "room_min"),
                post.bag_duration_min == 60 * st.arg("bag", "duration_h"), post.bag_run_min == 0))),
           ("tick with the same bag loaded -> bag_room_min + 1",
            lambda pre, post, st: L.Implies(L.And(st.is_("tick"), pre.bag_loaded == 1, post.bag_loaded == 1),
                                            post.bag_room_min == L.min(pre.bag_room_min + 1, COUNTER_MAX))),
           ("known outage with the same bag loaded -> bag_room_min + outage",
            lambda pre, post, st: L.Implies(L.And(st.is_("power_up"), st.ret == OK, pre.bag_loaded == 1, post.bag_loaded == 1),
                                            post.bag_room_min == L.min(pre.bag_room_min + st.arg("power_up", "outage_min"), COUNTER_MAX))),
           ("unknown outage -> bag discarded",
            lambda pre, post, st: L.Implies(L.And(st.is_("power_up"), st.arg("power_up", "outage_min") == -1),
                                            post.bag_loaded == 0)),
           ("other entry points keep a loaded bag's room time",
            lambda pre, post, st: L.Implies(L.And(L.Not(st.is_("tick")), L.Not(st.is_("power_up")), L.Not(st.is_("bag")),
                                                  post.bag_loaded == 1),
                                            post.bag_room_min == pre.bag_room_min)),
       ]),
    _p("cycles",
       "At most 28 days of infusion per cycle; never running in the treatment-free interval or after the course is "
       "done; the course has 4 cycles (MRD+), 9 (R/R) or the site's number given at set-up (consolidation, 1..9); "
       "the treatment-free interval is 14 "
       "days (56 days for R/R cycles 6-9) and the next cycle begins only when it has elapsed; a cycle ends only "
       "after 28 infusion days; no bag that would run past day 28; a restart after an interruption of at most 7 "
       "days continues the same cycle; after more than 7 days off for an adverse reaction it starts a new cycle; "
       "after more than 7 days off for another cause the pump does not decide: it starts only once the clinician "
       "chose a new cycle or to go on with this one.",
       ["L2-cycle-42", "L2.2-cycle-84", "L2.4-resume-7d", "L2.4-new-cycle", "L2.1-course", "L2.2-course", "L2.3-course"],
       state=[
           ("cycle_run_min <= 40320", lambda s: s.cycle_run_min <= CYCLE_INFUSION_MIN),
           ("running -> phase is infusion and 1 <= cycle <= max_cycles",
            lambda s: L.Implies(running(s), L.And(s.phase == INFUSION, s.cycle >= 1, s.cycle <= s.max_cycles))),
           ("patient set up -> max_cycles per indication (MRD+ 4, R/R 9, consolidation the site's 1..9) and "
            "1 <= cycle <= max_cycles",
            lambda s: L.Implies(s.mode != NO_PATIENT, L.And(
                L.If(s.indication == RR, s.max_cycles == MAX_CYCLES[RR],
                     L.If(s.indication == MRD, s.max_cycles == MAX_CYCLES[MRD],
                          L.And(s.max_cycles >= 1, s.max_cycles <= CONS_CYCLES_MAX))),
                s.cycle >= 1, s.cycle <= s.max_cycles))),
           ("patient set up -> free_len_min == (R/R and cycle >= 6 ? 56 d : 14 d)",
            lambda s: L.Implies(s.mode != NO_PATIENT, s.free_len_min == L.If(
                L.And(s.indication == RR, s.cycle >= RR_FIRST_CONTINUED_CYCLE), FREE_LONG_MIN, FREE_SHORT_MIN))),
       ],
       step=[
           ("consolidation set up -> the course is the site's count given (L2.3-course)",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "setup"), st.arg("setup", "indication") == CONS),
                                            post.max_cycles == st.arg("setup", "course_cycles"))),
           ("free interval -> infusion only by a tick once free_min + 1 >= free_len_min, as the next cycle from day 0",
            lambda pre, post, st: L.Implies(L.And(pre.phase == FREE, post.phase == INFUSION, L.Not(ended(st))), L.And(
                st.is_("tick"), pre.free_min + 1 >= pre.free_len_min, post.cycle == pre.cycle + 1, post.cycle_run_min == 0))),
           ("infusion -> free interval only by a tick or a power-up once 28 infusion days were booked (and have run)",
            lambda pre, post, st: L.Implies(L.And(pre.phase == INFUSION, post.phase == FREE), L.And(
                L.Or(st.is_("tick"), st.is_("power_up")), pre.cycle_run_min == CYCLE_INFUSION_MIN,
                post.cycle_run_min == CYCLE_INFUSION_MIN))),
           ("tick in the free interval -> free_min + 1, or the next cycle (or the end of the course) begins",
            lambda pre, post, st: L.Implies(L.And(st.is_("tick"), pre.phase == FREE), L.Or(
                post.free_min == L.min(pre.free_min + 1, COUNTER_MAX), post.phase != FREE))),
           ("a new cycle starts with no infusion minutes and no drug, or with the first minute a start booked",
            lambda pre, post, st: L.Implies(post.cycle != pre.cycle, L.Or(
                L.And(post.cycle_run_min == 0, post.cycle_ng == 0),
                L.And(accepted(st, "start"), post.cycle_run_min == 1,
                      post.cycle_ng == L.div(pre.acc_ng + pre.bag_ng_per_day, MIN_PER_DAY))))),
           ("course done stays done (until the therapy is ended)",
            lambda pre, post, st: L.Implies(L.And(pre.phase == DONE, L.Not(ended(st))), post.phase == DONE)),
           ("cycle number never decreases and grows by at most one (until the therapy is ended)",
            lambda pre, post, st: L.Implies(L.Not(ended(st)), L.And(post.cycle >= pre.cycle,
                                                                     post.cycle <= pre.cycle + 1))),
           ("cycle_run_min changes only by a delivered minute or a new cycle (from 0, or 1 if a start booked it)",
            lambda pre, post, st: L.Implies(L.And(post.cycle_run_min != pre.cycle_run_min, L.Not(ended(st))), L.Or(
                L.And(delivered(pre, post, st), post.cycle_run_min == pre.cycle_run_min + 1),
                L.And(post.cycle == pre.cycle + 1, L.Or(post.cycle_run_min == 0,
                                                        L.And(delivered(pre, post, st), post.cycle_run_min == 1)))))),
           ("accepted bag -> cycle_run_min + duration <= 40320",
            lambda pre, post, st: L.Implies(hung(pre, st),
                                            pre.cycle_run_min + 60 * st.arg("bag", "duration_h") <= CYCLE_INFUSION_MIN)),
           ("restart after an interruption of at most 7 days -> same cycle, its infusion minutes plus the first "
            "booked one",
            lambda pre, post, st: L.Implies(
                L.And(interruption_open(pre), post.mode == RUNNING, pre.now_min - pre.int_start_min <= NEW_CYCLE_MIN),
                L.And(post.cycle == pre.cycle, L.Or(post.cycle_run_min == pre.cycle_run_min + 1,
                                                    L.And(pre.booked_min == pre.now_min,
                                                          post.cycle_run_min == pre.cycle_run_min))))),
           ("restart after more than 7 days off for an adverse reaction (a Table 4 hold opened in it) -> a new "
            "cycle from day 0 (its first minute booked)",
            lambda pre, post, st: L.Implies(
                L.And(interruption_open(pre), post.mode == RUNNING, pre.now_min - pre.int_start_min > NEW_CYCLE_MIN,
                      pre.int_rx == 1),
                post.cycle_run_min == 1)),
           ("restart after more than 7 days off for another cause -> a new cycle, or the same one only if the "
            "clinician chose to go on with it",
            lambda pre, post, st: L.Implies(
                L.And(interruption_open(pre), post.mode == RUNNING, pre.now_min - pre.int_start_min > NEW_CYCLE_MIN),
                L.Or(post.cycle_run_min == 1, pre.int_decided == 1))),
           ("restart after an interruption of unknown length in a cycle begun -> a new cycle, or the same one "
            "only if the clinician chose to go on with it",
            lambda pre, post, st: L.Implies(
                L.And(interruption_open(pre), post.mode == RUNNING, pre.int_unknown == 1, pre.phase == INFUSION,
                      pre.cycle_run_min > 0),
                L.Or(post.cycle_run_min == 1, pre.int_decided == 1))),
           ("a stop for a reaction makes its interruption one for an adverse reaction",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "stop"), st.arg("stop", "reason") == 3),
                                            post.int_rx == 1)),
           ("while the clinician is asked (more than 7 days off, not for a reaction) the motor does not start",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), pre.cycle_ask == 1), L.Not(running(post)))),
           ("the clinician's answer: a new cycle from day 0 (or the course done), or this cycle goes on",
            lambda pre, post, st: L.Implies(accepted(st, "cycle_decision"), L.And(
                pre.cycle_ask == 1, post.cycle_ask == 0,
                L.If(st.arg("cycle_decision", "new_cycle") == 1,
                     L.Or(L.And(post.cycle == pre.cycle + 1, post.cycle_run_min == 0), post.phase == DONE),
                     L.And(post.cycle == pre.cycle, post.int_decided == 1))))),
       ]),
    _p("lockout",
       "Once locked, never running again and locked stays 1; never running while a reaction hold is open or a "
       "clinician decision is pending; no stopped -> running within 720 min of an overdose; Table 4 applied: grade 4 "
       "CRS, grade 4 neurologic/ICANS/seizure, a second seizure of any grade and a grade 3 neurologic event that "
       "began at the low dose (the bag running or last running) lock; grade 3 CRS, grade 2 ICANS, grade 3 "
       "neurologic events and other grade 3-4 reactions open a hold of their kind; several kinds can be open at "
       "once, each with its own onset, and a kind entered again keeps its onset and never lowers its grade; a "
       "grade 3 neurologic hold is released only 3 days or more after its grade 3 entry and at most 7 days after "
       "its onset, another grade 3 reaction within 14 days; unresolved ones lock when their limit passes; "
       "resolving one kind leaves the others open; another grade 4 reaction asks the clinician, whose "
       "'discontinue' locks; a grade names its scale, CTCAE (ASTCT allowed for ICANS), any other is refused.",
       ["L2.4-crs-4", "L2.4-seizure", "L2.4-neuro-3", "L2.4-neuro-4", "L2.4-icans-2", "L2.4-other-3",
        "L2.4-other-4", "L2.4-restart-9", "L2.4-grading", "EXT-overdose-12h"],
       state=[
           ("locked -> not running", lambda s: L.Implies(s.locked == 1, L.Not(running(s)))),
           ("a reaction hold open -> not running", lambda s: L.Implies(holding(s), L.Not(running(s)))),
           ("decision pending -> not running", lambda s: L.Implies(s.decision_pending == 1, L.Not(running(s)))),
       ],
       step=[
           ("locked stays locked (until the therapy is ended)",
            lambda pre, post, st: L.Implies(L.And(pre.locked == 1, L.Not(ended(st))), post.locked == 1)),
           ("motor starts -> no overdose in the last 720 min",
            lambda pre, post, st: L.Implies(L.And(started(pre, post), pre.overdose_min >= 0),
                                            pre.now_min - pre.overdose_min >= OVERDOSE_WAIT_MIN)),
           ("overdose accepted -> stopped, overdose_min == now",
            lambda pre, post, st: L.Implies(accepted(st, "overdose"),
                                            L.And(L.Not(running(post)), post.overdose_min == pre.now_min))),
           ("a valid reaction entry (kind 1-5, grade 1-4, its scale the label's) for a set-up patient is accepted",
            lambda pre, post, st: L.Implies(L.And(st.is_("reaction"), pre.mode != NO_PATIENT,
                                                  st.arg("reaction", "kind") >= RX_CRS, st.arg("reaction", "kind") <= RX_OTHER,
                                                  st.arg("reaction", "grade") >= 1, st.arg("reaction", "grade") <= 4,
                                                  _scale_ok(st.arg("reaction", "kind"), st.arg("reaction", "scale"))),
                                            st.ret == OK)),
           ("a grade on another scale (CTCAE; ASTCT only for ICANS) is refused and changes nothing",
            lambda pre, post, st: L.Implies(L.And(st.is_("reaction"), pre.mode != NO_PATIENT,
                                                  st.arg("reaction", "kind") >= RX_CRS, st.arg("reaction", "kind") <= RX_OTHER,
                                                  st.arg("reaction", "grade") >= 1, st.arg("reaction", "grade") <= 4,
                                                  L.Not(_scale_ok(st.arg("reaction", "kind"), st.arg("reaction", "scale")))),
                                            L.And(st.ret == E_SCALE, *[post._f[f] == pre._f[f] for f in _kernel_fields(pre)]))),
           ("an overdose report for a set-up patient is accepted",
            lambda pre, post, st: L.Implies(L.And(st.is_("overdose"), pre.mode != NO_PATIENT), st.ret == OK)),
           ("grade 4 CRS -> locked",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "reaction"), st.arg("reaction", "kind") == RX_CRS,
                                                  st.arg("reaction", "grade") == 4), post.locked == 1)),
           ("grade 4 neurologic, ICANS or seizure -> locked",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "reaction"), L.In(st.arg("reaction", "kind"), (RX_NEURO, RX_ICANS, RX_SEIZURE)),
                                                  st.arg("reaction", "grade") == 4), post.locked == 1)),
           ("second seizure (any grade) -> locked",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "reaction"), st.arg("reaction", "kind") == RX_SEIZURE,
                                                  pre.seizures >= 1), post.locked == 1)),
           ("grade 3 neurologic/ICANS/seizure that began at the low dose (the bag running, or last running, at most "
            "the low cap) -> locked",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "reaction"), L.In(st.arg("reaction", "kind"), (RX_NEURO, RX_ICANS, RX_SEIZURE)),
                                                  st.arg("reaction", "grade") == 3, pre.run_ng_per_day > 0,
                                                  pre.run_ng_per_day <= pre.cap_low_ng_per_day), post.locked == 1)),
           ("the dose a reaction begins at is the bag's rate: a start sets it, nothing else changes it but a new patient",
            lambda pre, post, st: L.Implies(post.run_ng_per_day != pre.run_ng_per_day,
                                            L.Or(L.And(accepted(st, "start"), post.run_ng_per_day == pre.bag_ng_per_day),
                                                 st.is_("setup"), ended(st)))),
           ("grade 3 CRS, grade 2-3 ICANS, grade 3 neurologic event or seizure, other grade 3-4 -> the hold of its "
            "kind is open (or locked), the motor stopped",
            lambda pre, post, st: L.Implies(
                L.And(accepted(st, "reaction"), L.Or(st.arg("reaction", "grade") >= 3,
                                                     L.And(st.arg("reaction", "kind") == RX_ICANS,
                                                           st.arg("reaction", "grade") == 2))),
                L.And(L.Not(running(post)), L.Or(post.locked == 1, *[
                    L.And(st.arg("reaction", "kind") == kind, post._f[name] != 0)
                    for kind, name in HOLD_FIELD.items()])))),
           ("a hold opened by an entry starts its own clock now (its onset; and its 3-day floor when it "
            "first becomes grade 3); a hold already at grade 3 keeps its floor",
            lambda pre, post, st: L.Implies(accepted(st, "reaction"), L.And(*[
                L.And(L.Implies(L.And(pre._f[g] == 0, post._f[g] != 0), post._f[onset] == pre.now_min),
                      L.Implies(L.And(pre._f[g] != 3, post._f[g] == 3), post._f[g3] == pre.now_min),
                      L.Implies(L.And(pre._f[g] == 3, post._f[g] == 3), post._f[g3] == pre._f[g3]))
                for _, g, onset, g3 in NEURO3_HOLDS]))),
           ("an open hold is never weakened by a later entry: its grade does not drop, its onset stays",
            lambda pre, post, st: L.Implies(st.is_("reaction"), L.And(
                *[L.Implies(pre._f[g] != 0, L.And(post._f[g] >= pre._f[g], post._f[onset] == pre._f[onset]))
                  for _, g, onset, _ in NEURO3_HOLDS],
                L.Implies(pre.rx_other != 0, L.And(post.rx_other >= pre.rx_other,
                                                   post.rx_other_onset_min == pre.rx_other_onset_min)),
                L.Implies(pre.rx_crs != 0, post.rx_crs == pre.rx_crs)))),
           ("resolving one kind closes only that kind's hold",
            lambda pre, post, st: L.Implies(accepted(st, "resolved"), L.And(*[
                L.If(st.arg("resolved", "kind") == kind, post._f[name] == 0, post._f[name] == pre._f[name])
                for kind, name in HOLD_FIELD.items()]))),
           ("other grade 4 reaction -> decision pending (or locked)",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "reaction"), st.arg("reaction", "kind") == RX_OTHER,
                                                  st.arg("reaction", "grade") == 4),
                                            L.Or(post.decision_pending == 1, post.locked == 1))),
           ("clinician decides to discontinue -> locked",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "decide"), st.arg("decide", "discontinue") == 1),
                                            post.locked == 1)),
           ("grade 3 neurologic hold released -> 3 days or more after its grade 3 entry, at most 7 days after its onset",
            lambda pre, post, st: L.Implies(L.Not(ended(st)), L.And(*[
                L.Implies(L.And(pre._f[g] == 3, post._f[g] == 0),
                          L.And(pre.now_min - pre._f[g3] >= NEURO3_MIN_WITHHOLD_MIN,
                                pre.now_min - pre._f[onset] <= NEURO3_MAX_RESOLVE_MIN))
                for _, g, onset, g3 in NEURO3_HOLDS]))),
           ("other grade >= 3 hold released -> within 14 days of its onset",
            lambda pre, post, st: L.Implies(
                L.And(pre.rx_other >= 3, post.rx_other == 0, L.Not(ended(st))),
                pre.now_min - pre.rx_other_onset_min <= OTHER3_MAX_RESOLVE_MIN)),
           ("a minute tick with a grade 3 neurologic hold open more than 7 days after its onset -> locked",
            lambda pre, post, st: L.Implies(st.is_("tick"), L.And(*[
                L.Implies(L.And(pre._f[g] == 3, post.now_min - pre._f[onset] > NEURO3_MAX_RESOLVE_MIN), post.locked == 1)
                for _, g, onset, _ in NEURO3_HOLDS]))),
           ("a minute tick with another grade >= 3 hold open more than 14 days after its onset -> locked",
            lambda pre, post, st: L.Implies(
                L.And(st.is_("tick"), pre.rx_other >= 3, post.now_min - pre.rx_other_onset_min > OTHER3_MAX_RESOLVE_MIN),
                post.locked == 1)),
       ]),
    _p("alarms",
       "The pump alarms while its cause lasts: a locked pump shows the lock-out alarm, a latched fault stops the "
       "motor and shows the fault alarm, a pending re-initiation shows the re-initiation alarm; a power loss while "
       "infusing raises the power alarm.",
       ["EXT-pump"],
       state=[
           ("locked -> AL_LOCKED set", lambda s: L.Implies(s.locked == 1, L.bit(s.alarm, AL_LOCKED))),
           ("fault -> not running and AL_FAULT set", lambda s: L.Implies(s.fault == 1, L.And(L.Not(running(s)), L.bit(s.alarm, AL_FAULT)))),
           ("reinit_needed -> AL_REINIT set", lambda s: L.Implies(s.reinit_needed == 1, L.bit(s.alarm, AL_REINIT))),
           ("0 <= alarm <= 255", lambda s: L.And(s.alarm >= 0, s.alarm <= 255)),
       ],
       step=[
           ("power lost while running -> AL_POWER set",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "power_up"), running(pre)), L.bit(post.alarm, AL_POWER))),
       ]),
    _p("stop-commands",
       "Stopping always works: a stop command with a valid reason stops a running motor; a power-up leaves the "
       "motor stopped; a fault stops it and latches until a clinician clears it (clear_fault), with the fault alarm.",
       ["EXT-pump"],
       step=[
           ("stop with a valid reason while running -> accepted, motor stopped",
            lambda pre, post, st: L.Implies(L.And(st.is_("stop"), running(pre), st.arg("stop", "reason") >= 1,
                                                  st.arg("stop", "reason") <= 11),
                                            L.And(st.ret == OK, L.Not(running(post)), post.motor_ul_per_h == 0))),
           ("power-up -> motor stopped",
            lambda pre, post, st: L.Implies(st.is_("power_up"), L.Not(running(post)))),
           ("fault -> latched, motor stopped, AL_FAULT set",
            lambda pre, post, st: L.Implies(st.is_("fault"), L.And(post.fault == 1, L.Not(running(post)),
                                                                    L.bit(post.alarm, AL_FAULT)))),
           ("a latched fault is cleared only by clear_fault",
            lambda pre, post, st: L.Implies(L.And(pre.fault == 1, post.fault == 0), st.is_("clear_fault"))),
       ]),
    _p("patient",
       "Therapy is for one patient set up once with a labelled indication; the caps derive from the patient: "
       ">= 45 kg fixed 28 and 9 mcg/day, < 45 kg 15 and 5 mcg/m2/day (BSA-based) capped at 28 and 9 mcg/day, "
       "from the current weight and BSA; the patient and indication never change until the therapy is ended; "
       "weight and BSA change only by an accepted update while stopped, and a loaded bag above the new cap "
       "is taken off.",
       ["L1.1", "L1.2", "L1.3", "L2-weight-45", "L2-dose-28"],
       state=[
           ("patient set up -> indication in {MRD+, R/R, consolidation}",
            lambda s: L.Implies(s.mode != NO_PATIENT, L.In(s.indication, (MRD, RR, CONS)))),
           ("patient set up, weight >= 45 kg -> caps 28000 and 9000",
            lambda s: L.Implies(L.And(s.mode != NO_PATIENT, s.weight_g >= WEIGHT_FIXED_G),
                                L.And(s.cap_full_ng_per_day == CAP_FULL, s.cap_low_ng_per_day == CAP_STEP))),
           ("patient set up, weight < 45 kg -> caps min(1.5 * bsa_cm2, 28000) and min(0.5 * bsa_cm2, 9000)",
            lambda s: L.Implies(L.And(s.mode != NO_PATIENT, s.weight_g < WEIGHT_FIXED_G), L.And(
                s.bsa_cm2 >= 500, s.bsa_cm2 <= 35000,
                s.cap_full_ng_per_day == L.min(L.div(3 * s.bsa_cm2, 2), CAP_FULL),
                s.cap_low_ng_per_day == L.min(L.div(s.bsa_cm2, 2), CAP_STEP)))),
       ],
       step=[
           ("set-up accepted -> no patient before, no fault, and the entered patient is recorded",
            lambda pre, post, st: L.Implies(accepted(st, "setup"), L.And(
                pre.mode == NO_PATIENT, pre.fault == 0, post.mode == STOPPED,
                post.patient_id == st.arg("setup", "patient_id"), post.indication == st.arg("setup", "indication"),
                post.weight_g == st.arg("setup", "weight_g")))),
           ("patient and indication unchanged after set-up, until the therapy is ended",
            lambda pre, post, st: L.Implies(L.And(pre.mode != NO_PATIENT, L.Not(ended(st))), L.And(*[
                post._f[f] == pre._f[f] for f in ("patient_id", "indication")]))),
           ("weight, BSA and caps change only by an accepted update_patient, made while stopped, recording the "
            "values entered (or by the end of therapy)",
            lambda pre, post, st: L.Implies(L.And(pre.mode != NO_PATIENT, L.Not(ended(st)),
                                                  L.Or(*[post._f[f] != pre._f[f] for f in
                                                         ("weight_g", "bsa_cm2", "cap_full_ng_per_day",
                                                          "cap_low_ng_per_day")])),
                                            L.And(accepted(st, "update_patient"), pre.mode == STOPPED,
                                                  post.weight_g == st.arg("update_patient", "weight_g")))),
           ("after an accepted update, a loaded bag is within the new cap in force, and a preservative bag stays "
            "only for 5.4 kg or more",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "update_patient"), post.bag_loaded == 1), L.And(
                post.bag_ng_per_day <= post.cap_ng_per_day,
                L.Implies(post.bag_duration_min > 2880, post.weight_g >= WEIGHT_PRESERVATIVE_MIN_G)))),
       ]),
    # ---- the clock (L2-reinit-4h): time that cannot be known is never counted as minutes,
    # and never shortens an interruption; the board's side is tests/test_clock_faults.py
    _p("clock-fault",
       "A clock fault (the board's clock ran backwards or jumped forwards) stops the motor and latches the fault "
       "with its alarm; an infusion running or interrupted becomes an open interruption of unknown length with "
       "re-initiation pending; a loaded bag is discarded with the bag-expired alarm (its room-temperature time is "
       "unknown); the unknown gap is not counted as time and nothing is delivered; a repeat while latched with no "
       "bag changes no field.",
       ["L2-reinit-4h", "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-7d", "EXT-pump"],
       state=[
           ("fault latched -> AL_FAULT set", lambda s: L.Implies(s.fault == 1, L.bit(s.alarm, AL_FAULT))),
       ],
       step=[
           ("clock fault -> latched, motor stopped (flow 0), AL_FAULT set",
            lambda pre, post, st: L.Implies(st.is_("clock_fault"), L.And(
                post.fault == 1, L.Not(running(post)), post.motor_ul_per_h == 0, L.bit(post.alarm, AL_FAULT)))),
           ("clock fault while running or interrupted -> interruption open, unknown, re-initiation pending",
            lambda pre, post, st: L.Implies(L.And(st.is_("clock_fault"), L.Or(running(pre), interruption_open(pre))),
                                            L.And(interruption_open(post), post.int_unknown == 1,
                                                  post.reinit_needed == 1))),
           ("clock fault -> no bag loaded; a loaded one is discarded with AL_BAG_EXPIRED",
            lambda pre, post, st: L.Implies(st.is_("clock_fault"), L.And(
                post.bag_loaded == 0, L.Implies(pre.bag_loaded == 1, L.bit(post.alarm, AL_BAG_EXPIRED))))),
           ("clock fault -> the unknown gap is not counted (now_min, free_min unchanged) and nothing is delivered",
            lambda pre, post, st: L.Implies(st.is_("clock_fault"), L.And(
                post.now_min == pre.now_min, post.free_min == pre.free_min,
                post.course_ng == pre.course_ng, post.course_ul == pre.course_ul))),
           ("clock fault repeated while latched with no bag -> E_FAULT and no field changes (nothing to record); "
            "otherwise OK",
            lambda pre, post, st: L.Implies(st.is_("clock_fault"), L.If(
                L.And(pre.fault == 1, pre.bag_loaded == 0),
                L.And(st.ret == E_FAULT, *[post._f[f] == pre._f[f] for f in _kernel_fields(pre)]),
                st.ret == OK))),
       ]),
    _p("unknown-outage",
       "A power-up whose outage is unknown (-1) or negative (a clock that ran backwards) leaves the motor stopped; "
       "an infusion running or interrupted before it becomes an open interruption of unknown length with "
       "re-initiation pending and the acknowledgements needed again; a loaded bag is discarded; the outage is not "
       "counted as time.",
       ["L2-reinit-4h", "L2-premed", "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-7d"],
       step=[
           ("unknown or backwards outage -> motor stopped, no bag loaded, now_min unchanged",
            lambda pre, post, st: L.Implies(L.And(st.is_("power_up"), st.arg("power_up", "outage_min") < 0), L.And(
                L.Not(running(post)), post.motor_ul_per_h == 0, post.bag_loaded == 0, post.now_min == pre.now_min))),
           ("unknown or backwards outage while running or interrupted -> interruption open, unknown, re-initiation "
            "pending with premedication and supervision to acknowledge",
            lambda pre, post, st: L.Implies(
                L.And(st.is_("power_up"), st.arg("power_up", "outage_min") < 0, L.Or(running(pre), interruption_open(pre))),
                L.And(interruption_open(post), post.int_unknown == 1, post.reinit_needed == 1,
                      post.need_premed == 1, post.need_supervision == 1))),
       ]),
    _p("interruption-count",
       "An interruption is never under-counted: every tick counts one minute, a known outage counts in full, an "
       "outage the kernel does not take as known leaves the interruption unknown; no other entry point moves the "
       "clock; an open interruption keeps its start and its unknown flag until a start closes it; while it is open "
       "and 240 kernel minutes or more old, or of unknown length, re-initiation is pending, and only a start that "
       "runs the motor clears it.",
       ["L2-reinit-4h", "L2-premed"],
       state=[
           ("open interruption >= 240 min or of unknown length -> reinit_needed",
            lambda s: L.Implies(L.And(interruption_open(s), L.Or(s.now_min - s.int_start_min >= REINIT_MIN,
                                                                 s.int_unknown == 1)),
                                s.reinit_needed == 1)),
       ],
       step=[
           ("tick -> now_min + 1 (saturating)",
            lambda pre, post, st: L.Implies(st.is_("tick"), post.now_min == L.min(pre.now_min + 1, COUNTER_MAX))),
           ("power-up with an outage >= 0 -> now_min + outage (saturating), or the outage is treated as unknown",
            lambda pre, post, st: L.Implies(L.And(st.is_("power_up"), st.arg("power_up", "outage_min") >= 0), L.Or(
                post.now_min == L.min(pre.now_min + st.arg("power_up", "outage_min"), COUNTER_MAX),
                L.And(post.now_min == pre.now_min, post.bag_loaded == 0,
                      L.Implies(L.Or(running(pre), interruption_open(pre)),
                                L.And(interruption_open(post), post.int_unknown == 1)))))),
           ("other entry points leave now_min unchanged",
            lambda pre, post, st: L.Implies(L.And(L.Not(st.is_("tick")), L.Not(st.is_("power_up"))),
                                            post.now_min == pre.now_min)),
           ("an open interruption keeps its start, and stays unknown once unknown, while it stays open",
            lambda pre, post, st: L.Implies(L.And(interruption_open(pre), interruption_open(post)), L.And(
                post.int_start_min == pre.int_start_min, post.int_unknown >= pre.int_unknown))),
           ("an open interruption closes only by a start that runs the motor, by the tick or power-up that ends "
            "the cycle whose 28 days were booked before the stop, or by the end of therapy",
            lambda pre, post, st: L.Implies(L.And(interruption_open(pre), L.Not(interruption_open(post))), L.Or(
                L.And(st.is_("start"), running(post)), ended(st),
                L.And(L.Or(st.is_("tick"), st.is_("power_up")), pre.phase == INFUSION,
                      pre.cycle_run_min >= CYCLE_INFUSION_MIN, post.phase == FREE)))),
           ("reinit_needed is cleared only by a start that runs the motor (or the end of therapy)",
            lambda pre, post, st: L.Implies(L.And(pre.reinit_needed == 1, post.reinit_needed == 0),
                                            L.Or(L.And(st.is_("start"), running(post)), ended(st)))),
       ]),
    _p("totals-monotone",
       "The delivered-dose record never goes down: no entry point but the end of therapy lowers course_ng or "
       "course_ul (the ended therapy's record is archived first, by the controller); while the same "
       "bag stays loaded (no new bag accepted) its delivered drug and volume, run time and room-temperature time "
       "never go down; bag_seq never goes down.",
       ["L2.5-errors", "L2-dose-28"],
       step=[
           ("course_ng and course_ul never decrease (until the therapy is ended)",
            lambda pre, post, st: L.Implies(L.Not(ended(st)), L.And(post.course_ng >= pre.course_ng,
                                                                     post.course_ul >= pre.course_ul))),
           ("same bag loaded -> bag_ng, bag_ul, bag_run_min, bag_room_min never decrease",
            lambda pre, post, st: L.Implies(L.And(pre.bag_loaded == 1, post.bag_loaded == 1, L.Not(hung(pre, st))),
                                            L.And(post.bag_ng >= pre.bag_ng, post.bag_ul >= pre.bag_ul,
                                                  post.bag_run_min >= pre.bag_run_min,
                                                  post.bag_room_min >= pre.bag_room_min))),
           ("bag_seq never decreases", lambda pre, post, st: post.bag_seq >= pre.bag_seq),
       ]),
    _p("fault-latch",
       "The motor never runs while a fault is latched: a latched fault means mode not running and flow 0; start is "
       "refused while latched; clearing a fault never starts the motor.",
       ["EXT-pump", "L2-reinit-4h"],
       state=[
           ("fault -> not running and motor_ul_per_h == 0",
            lambda s: L.Implies(s.fault == 1, L.And(L.Not(running(s)), s.motor_ul_per_h == 0))),
       ],
       step=[
           ("start while latched -> refused, motor stopped",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), pre.fault == 1),
                                            L.And(st.ret != OK, L.Not(running(post))))),
           ("clear_fault of a latched fault -> motor stays stopped",
            lambda pre, post, st: L.Implies(L.And(st.is_("clear_fault"), pre.fault == 1), L.Not(running(post)))),
       ]),
    # ---- exact: the kernel against the label observer (model/observer.py), over the product of the two
    Property("label-relation",
             "The relational invariant of verify/relation.py (each kernel field read in the label observer's "
             "terms), the observer's own invariant and every observer field's range hold in the initial states and "
             "are preserved by every input, run on kernel and observer alike.",
             ["L2.5-errors"], special="relation", product=True),
    _exact("label-exact",
       "The kernel decides every input exactly as the label observer does: it accepts what the observer accepts "
       "and refuses with the observer's answer (the same clause); after every input the motor runs exactly when "
       "the observer lets it, at the table rate of the bag's duration (L2-constant-rate, EXT-rates) and at the "
       "bag's daily drug rate; and stopped, the flow is 0. Both sides: no refusal of what the label allows "
       "(L2.5-errors: an under-dose is a medication error too), no acceptance of what it forbids.",
       ["L2.5-errors", "L2-constant-rate", "EXT-rates", "L2-dose-28"],
       step=[
           ("the kernel's answer == the observer's answer",
            lambda pre, post, st: st.ret == post._f[_STATUS]),
           ("the motor runs <-> the observer lets it run",
            lambda pre, post, st: (post.mode == RUNNING) == (_obs(post).infusing == 1)),
           ("the flow == the table rate of the bag's duration while the observer lets it run, else 0",
            lambda pre, post, st: post.motor_ul_per_h == _flow(_obs(post))),
           ("running -> the drug rate == the observer's bag's daily drug",
            lambda pre, post, st: L.Implies(post.mode == RUNNING,
                                            post.bag_ng_per_day == _obs(post).bag_ng_per_day)),
       ]),
    # ---- per clause, both sides, over the observer's ghost state (what was entered, and when) and the
    # inputs; the kernel's side is only its answer and its motor
    _exact("exact-overdose-12h",
       "START is accepted only when no overdose was entered in the 12 hours before (the observer's record of the "
       "OVERDOSE inputs, not the kernel's); and START is refused for the 12-hour wait only then (no refusal of a "
       "valid restart).",
       ["EXT-overdose-12h", "L2.5-errors"],
       step=[
           ("start accepted -> no overdose entered in the last 720 min",
            lambda pre, post, st: L.Implies(accepted(st, "start"), L.Not(_overdose_wait(_obs(pre))))),
           ("start refused with E_OVERDOSE_12H -> an overdose was entered in the last 720 min",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), st.ret == E_OVERDOSE_12H),
                                            _overdose_wait(_obs(pre)))),
       ]),
    _exact("exact-reinit-4h",
       "START after an interruption of 4 hours or more, or of unknown length (timed by the observer from the "
       "inputs), is accepted only with a premedication given within the hour before and supervision given; "
       "START is refused for missing acknowledgements only when one is due (a cycle's first dose, or an "
       "interruption of 4 h or more): 3 h 59 min of a known interruption inside a begun cycle needs none.",
       ["L2-reinit-4h", "L2-premed", "L2.5-errors"],
       step=[
           ("start accepted after >= 240 min or unknown -> premedication within 60 min and supervision given",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "start"), _long_interruption(_obs(pre))),
                                            _acknowledged(_obs(pre)))),
           ("start refused with E_REINIT -> an acknowledgement is due and missing",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), st.ret == E_REINIT),
                                            L.And(L.Or(_obs(pre).premed_due == 1, _obs(pre).supervision_due == 1,
                                                       _long_interruption(_obs(pre))),
                                                  L.Not(_acknowledged(_obs(pre)))))),
           ("start after a known interruption under 240 min, no cycle start due -> never E_REINIT",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), _obs(pre).stopped_at_min >= 0,
                                                  _obs(pre).stop_unknown == 0, _obs(pre).reinit_due == 0,
                                                  _obs(pre).clock_min - _obs(pre).stopped_at_min < REINIT_MIN,
                                                  _obs(pre).premed_due == 0, _obs(pre).supervision_due == 0),
                                            st.ret != E_REINIT)),
       ]),
    _exact("exact-bag",
       "A new bag is accepted exactly when it is within every limit of the label for this patient now: stopped "
       "and not discontinued, the patient's, inside a cycle's infusion (not in the treatment-free interval, not "
       "after the course), a labelled duration with its preservative, 5.4 kg or more for a "
       "preservative bag, a plausible bag at the site's table rate that holds what it infuses, its daily drug "
       "(concentration x volume infused a day) within the cap in force for the observer's weight, BSA, step and "
       "restart windows, ending by day 28, within Table 5's storage, with an identity not hung before.",
       ["L2-dose-28", "L2.2-step", "L2.4-restart-9", "L2.5-durations", "L2.5-min-weight", "L2.5-errors",
        "L2.6-bag-24-48", "L2.6-bag-72-96", "L2.6-bag-7d", "L2-cycle-42", "L2.2-cycle-84", "L2.1-course",
        "L2.2-course", "L2.3-course", "EXT-rates"],
       step=[
           ("a new bag within every limit -> accepted",
            lambda pre, post, st: L.Implies(L.And(st.is_("bag"), _bag_allowed(_obs(pre), st),
                                                  st.arg("bag", "bag_id") > _obs(pre).last_bag_id,
                                                  st.arg("bag", "bag_id") <= COUNTER_MAX), st.ret == OK)),
           ("a new bag accepted -> within every limit",
            lambda pre, post, st: L.Implies(L.And(accepted(st, "bag"),
                                                  st.arg("bag", "bag_id") != _obs(pre).bag_id),
                                            _bag_allowed(_obs(pre), st))),
       ]),
    _exact("exact-holds",
       "A grade 3 neurologic hold (neurologic event, ICANS graded 3, seizure) ends by RESOLVED only from 3 days "
       "after it became grade 3 and within 7 days of its onset, and is always ended then; grade 2 ICANS and grade "
       "3 CRS end by RESOLVED at any time; while any hold the observer recorded is open, START is refused.",
       ["L2.4-neuro-3", "L2.4-icans-2", "L2.4-restart-9", "L2.4-seizure", "L2.5-errors"],
       step=[
           ("RESOLVED accepted for a grade 3 neurologic hold -> 3 days since grade 3, at most 7 since onset",
            lambda pre, post, st: L.And(*[L.Implies(L.And(accepted(st, "resolved"),
                                                          st.arg("resolved", "kind") == kind,
                                                          _obs(pre)._f[obs_grade(g)] == 3),
                                                    _neuro3_window(_obs(pre), g))
                                          for kind, g in ((RX_ICANS, "icans"), (RX_NEURO, "neuro"),
                                                          (RX_SEIZURE, "seizure"))])),
           ("RESOLVED of an open grade 3 neurologic hold inside its window -> accepted",
            lambda pre, post, st: L.And(*[L.Implies(L.And(st.is_("resolved"), st.arg("resolved", "kind") == kind,
                                                          _obs(pre)._f[obs_grade(g)] == 3,
                                                          _obs(pre).discontinued == 0,
                                                          _neuro3_window(_obs(pre), g)), st.ret == OK)
                                          for kind, g in ((RX_ICANS, "icans"), (RX_NEURO, "neuro"),
                                                          (RX_SEIZURE, "seizure"))])),
           ("RESOLVED of an open grade 2 ICANS or grade 3 CRS hold -> accepted (no floor)",
            lambda pre, post, st: L.Implies(L.And(st.is_("resolved"), _obs(pre).discontinued == 0, L.Or(
                L.And(st.arg("resolved", "kind") == RX_ICANS, _obs(pre).icans == 2),
                L.And(st.arg("resolved", "kind") == RX_CRS, _obs(pre).crs == 3))), st.ret == OK)),
           ("a hold open -> START refused and the motor stays stopped",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), _on_hold(_obs(pre))),
                                            L.And(st.ret != OK, post.mode != RUNNING))),
       ]),
    _exact("exact-daily-cap",
       "While the motor runs, the daily drug of the bag hung (as the observer recorded it from the BAG input) "
       "is within the cap the label sets for the observer's patient now: 28 mcg/day from 45 kg, 15 mcg/m2/day "
       "below (never above 28); 9 mcg/day, 5 mcg/m2/day below 45 kg (never above 9), on the first 7 days of "
       "infusion of a relapsed/refractory course and for the first 7 days of infusion after a restart from a hold, "
       "both counted in the minutes the observer saw infused. And START is refused for the dose only when the bag "
       "is above that cap, or its next minute would take the 24-hour window past the highest cap in force in it: "
       "a bag at the cap starts.",
       ["L2-dose-28", "L2-weight-45", "L2.2-step", "L2.4-restart-9", "L2.5-errors"],
       step=[
           ("the motor runs -> the bag's daily drug <= the label's cap for the patient, before and after the "
            "input (a start on the last minute of a low-dose window is held to the low dose)",
            lambda pre, post, st: L.Implies(post.mode == RUNNING, _obs(post).bag_ng_per_day <= L.min(
                label_cap(_obs(pre)), label_cap(_obs(post))))),
           ("start refused with E_DOSE_CAP -> the bag is above the cap, or a new minute would take the window "
            "past its cap (never for a minute already begun: a resume)",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), st.ret == E_DOSE_CAP), L.Or(
                _obs(pre).bag_ng_per_day > label_cap(_obs(pre)),
                L.And(_obs(pre).booked_min != _obs(pre).clock_min,
                      _obs(pre).window_ng + L.div(_obs(pre).carry_ng + _obs(pre).bag_ng_per_day, MIN_PER_DAY)
                      > L.max(_obs(pre).window_cap_ng, label_cap(_obs(pre))))))),
       ]),
    _exact("exact-cycle",
       "The motor runs only inside a cycle's infusion: never in the treatment-free interval, never once the "
       "course is over, never past 28 days infused in the cycle (all as the observer counted them from the "
       "inputs). START is refused for the treatment-free interval exactly while the observer is in it and for the "
       "course exactly once it is over: the interval's length (14 days; 56 after R/R cycles 6-9) and the course's "
       "count (4 MRD+, 9 R/R, the site's for consolidation) are written out here, so a refusal one day into the "
       "next cycle, or a course ended a cycle early, is not equal to the label.",
       ["L2-cycle-42", "L2.2-cycle-84", "L2.1-course", "L2.2-course", "L2.3-course", "L2.5-errors"],
       step=[
           ("the motor runs -> in a cycle's infusion, the course not over, at most 28 days infused in it",
            lambda pre, post, st: L.Implies(post.mode == RUNNING, L.And(
                _obs(post).in_break == 0, _obs(post).course_over == 0,
                _obs(post).cycle_infused_min <= CYCLE_INFUSION_MIN))),
           ("start refused with E_FREE_INTERVAL -> the observer is in the treatment-free interval",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), st.ret == E_FREE_INTERVAL),
                                            _obs(pre).in_break == 1)),
           ("a minute of the treatment-free interval ends it exactly when 14 days (56 after R/R cycles 6-9) "
            "have passed",
            lambda pre, post, st: L.Implies(L.And(st.is_("tick"), _obs(pre).in_break == 1),
                                            (_obs(post).in_break == 0) == (_obs(pre).break_min + 1 >= L.If(
                                                L.And(_obs(pre).indication == RR,
                                                      _obs(pre).cycle >= RR_FIRST_CONTINUED_CYCLE),
                                                FREE_LONG_MIN, FREE_SHORT_MIN)))),
           ("the course is over -> its last cycle was given: the 4th (MRD+), the 9th (R/R), the site's count "
            "(consolidation)",
            lambda pre, post, st: L.Implies(_obs(post).course_over == 1, L.And(
                _obs(post).cycle == _obs(post).course_cycles,
                L.Implies(_obs(post).indication == MRD, _obs(post).course_cycles == MAX_CYCLES[MRD]),
                L.Implies(_obs(post).indication == RR, _obs(post).course_cycles == MAX_CYCLES[RR])))),
           ("start in the treatment-free interval -> refused, the motor stays stopped",
            lambda pre, post, st: L.Implies(L.And(st.is_("start"), _obs(pre).in_break == 1),
                                            L.And(st.ret != OK, post.mode != RUNNING))),
           ("start refused with E_COURSE_DONE -> the course is over; start once it is over -> refused",
            lambda pre, post, st: L.And(
                L.Implies(L.And(st.is_("start"), st.ret == E_COURSE_DONE), _obs(pre).course_over == 1),
                L.Implies(L.And(st.is_("start"), _obs(pre).course_over == 1), st.ret != OK))),
       ]),
    Property("kernel-invariant",
             "The kernel's stated invariant (`invariant(s)` in firmware/kernel.py) and every field's documented "
             "range hold in the initial state and are preserved by every entry point with any input.",
             ["L2.5-errors"], special="invariant"),
    Property("translation-exact",
             "The operands of every `&` and `|` stay in [0, 255] (so the bit-level translation is exact).",
             [], special="obligations"),
]


_STATUS = "o_status"
E_REINIT = 13                        # the kernel's status: acknowledgements missing
E_OVERDOSE_12H = 18                  # the kernel's status: within 12 h of an overdose
E_DOSE_CAP = 9                       # the kernel's status: above the cap in force
E_FREE_INTERVAL = 15                 # the kernel's status: the treatment-free interval
E_COURSE_DONE = 21                   # the kernel's status: the course is over


def obs_grade(kind: str) -> str:
    return "o_" + kind


def _overdose_wait(o: Any) -> Any:
    return L.And(o.overdose_at_min >= 0, o.clock_min - o.overdose_at_min < OVERDOSE_WAIT_MIN)


def _long_interruption(o: Any) -> Any:
    return L.And(o.stopped_at_min >= 0, L.Or(o.clock_min - o.stopped_at_min >= REINIT_MIN, o.stop_unknown == 1))


def _acknowledged(o: Any) -> Any:
    return L.And(o.premed_at_min >= 0, o.clock_min - o.premed_at_min <= PREMED_WINDOW_MIN, o.supervision_given == 1)


def _on_hold(o: Any) -> Any:
    return L.Or(o.crs != 0, o.icans != 0, o.neuro != 0, o.seizure != 0, o.other != 0)


def _neuro3_window(o: Any, g: str) -> Any:
    return L.And(o.clock_min - o._f["o_%s_g3_min" % g] >= NEURO3_MIN_WITHHOLD_MIN,
                 o.clock_min - o._f["o_%s_onset_min" % g] <= NEURO3_MAX_RESOLVE_MIN)


def label_full_cap(o: Any) -> Any:
    """L2-dose-28, L2-weight-45: 28 mcg/day from 45 kg; below, 15 mcg/m2/day (1.5 ng/cm2), never
    above the fixed dose; in ng/day for the observer's patient now."""
    return L.If(o.weight_g >= WEIGHT_FIXED_G, CAP_FULL, L.min(o.bsa_cm2 + L.div(o.bsa_cm2, 2), CAP_FULL))


def label_low_cap(o: Any) -> Any:
    """L2.2-step, L2.4-restart-9: 9 mcg/day from 45 kg; below, 5 mcg/m2/day (0.5 ng/cm2), never
    above 9 mcg/day."""
    return L.If(o.weight_g >= WEIGHT_FIXED_G, CAP_STEP, L.min(L.div(o.bsa_cm2, 2), CAP_STEP))


def label_cap(o: Any) -> Any:
    """The daily cap the label sets for the observer's patient now: the low dose of L2.2-step
    (relapsed/refractory, the first 7 days infused) and of L2.4-restart-9 (the first 7 days
    infused after a restart from a hold), else the full dose. The relational invariant reads the
    kernel's caps with these same three (verify/relation.py)."""
    in_low = L.Or(L.And(o.indication == RR, o.step_infused_min < STEP_WINDOW_MIN),
                  o.restart_infused_min < RESTART_LOW_MIN)
    return L.If(in_low, label_low_cap(o), label_full_cap(o))


def _daily_drug(d: Any, drug: Any, vol: Any) -> Any:
    """EXT-rates: ceil(drug x table rate x 24 / volume), one product of constants per duration
    (linear in the inputs but for the one division by the volume)."""
    out: Any = L.ceil_div(drug * (24 * RATE_UL_PER_H[168]), vol)
    for h in (96, 72, 48, 24):
        out = L.If(d == h, L.ceil_div(drug * (24 * RATE_UL_PER_H[h]), vol), out)
    return out


def _bag_allowed(o: Any, st: Step) -> Any:
    """Every limit of the label on a bag order, for the observer's patient now."""
    a = lambda name: st.arg("bag", name)  # noqa: E731
    d, pres, vol, drug, rate = a("duration_h"), a("preservative"), a("volume_ul"), a("drug_ng"), a("rate_ul_per_h")
    table = _by_duration(d, RATE_UL_PER_H)
    return L.And(
        o.patient == 1, o.infusing == 0, o.discontinued == 0, a("patient_id") == o.patient_id,
        o.course_over == 0, o.in_break == 0,            # a cycle's infusion: not the course's end, no break
        L.In(d, DURATIONS_H), L.Or(L.And(pres == 0, d <= 48), L.And(pres == 1, d >= 72)),
        L.Or(pres == 0, o.weight_g >= WEIGHT_PRESERVATIVE_MIN_G),
        vol >= 10000, vol <= 1000000, drug >= 1, drug <= BAG_DRUG_MAX_NG,
        rate == table, table * d <= vol,
        _daily_drug(d, drug, vol) <= label_cap(o),
        o.cycle_infused_min + 60 * d <= CYCLE_INFUSION_MIN,
        a("room_min") >= 0, a("fridge_min") >= 0,
        a("room_min") + 60 * d <= _by_duration(d, ROOM_LIMIT_MIN), a("fridge_min") <= _by_duration(d, FRIDGE_LIMIT_MIN))


def _obs(post: S) -> Any:
    from .relation import O
    return O(post._f)


def _flow(o: Any) -> Any:
    from .relation import flow
    return flow(o)


def by_id(ids: list[str] | None = None) -> list[Property]:
    if not ids:
        return list(PROPERTIES)
    known = {p.id: p for p in PROPERTIES}
    missing = [i for i in ids if i not in known]
    if missing:
        raise KeyError("unknown property %s (known: %s)" % (", ".join(missing), ", ".join(known)))
    return [known[i] for i in ids]


def render(p: Property, field_names: list[str]) -> str:
    """The property's Z3 formula over pre.*, post.*, the entry (entry==name), its inputs
    (entry.param) and its return value (ret), as Z3 prints it."""
    pre = S({f: z3.Int("pre.%s" % f) for f in field_names})
    post = S({f: z3.Int("post.%s" % f) for f in field_names})
    st = Step(None, {}, z3.Int("ret"))
    parts = [("state (post; assumed of pre)", c.text, c.fn(post)) for c in p.state]
    parts += [("step", c.text, c.fn(pre, post, st)) for c in p.step]
    lines = []
    for kind, text, term in parts:
        lines.append("# %s: %s\n%s" % (kind, text, term if not isinstance(term, bool) else str(term)))
    return "\n".join(lines)


if __name__ == "__main__":  # print every property's formula (docs/verifier.md, appendix)
    import sys
    from pathlib import Path

    from .subset import load_kernel
    z3.set_option(max_args=100000, max_lines=100000, max_depth=100000, max_visited=1000000)
    from .product import OBSERVER, make_product
    k = load_kernel(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "firmware" / "kernel.py")
    product = make_product(k, load_kernel(OBSERVER))
    for prop in PROPERTIES:
        names = product.field_names if prop.product else k.field_names
        print("### %s\n\nClauses: %s\n\n%s\n\n```\n%s\n```\n" % (prop.id, ", ".join(prop.clauses) or "-", prop.statement,
                                                             render(prop, names) if not prop.special
                                                             else "(built by the engine: %s)" % prop.special))
