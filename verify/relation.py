"""The relational invariant: how the kernel's state and the label observer's state correspond.

Kernel and observer (model/observer.py) run side by side on the same inputs. Each conjunct
below says how one kernel field is read in the observer's terms; together they are the
invariant of the product that `blinpump prove` checks (it must hold in the initial states and
be preserved by every input, property `label-relation`) and prints in the report. The
decisions themselves (property `label-exact`) are then proved equal from it.

Written over the kernel's fields (k.*) and the observer's fields (o.*) with the operators of
verify/properties.py, so the same text gives the Z3 term and the value on a replayed trace.
Nothing here is read by the kernel or the observer.
"""
from __future__ import annotations

from typing import Any, Callable

from ..model import observer as label
from .properties import L, S, label_cap, label_full_cap, label_low_cap

PREFIX = "o_"               # the observer's fields in the product's state
STATUS = "o_status"         # the observer's answer to the last input (the product's extra field)

# the site's rate table (EXT-rates) and Table 5 as the observer states them, by bag hours
_RATE = {24: label.RATE_1D, 48: label.RATE_2D, 72: label.RATE_3D, 96: label.RATE_4D, 168: label.RATE_7D}
_ROOM = {h: label._room_limit_min(h) for h in _RATE}


class O(S):
    """The observer's part of a product state: o.name is the product's field o_name."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self._f[PREFIX + name]
        except KeyError:
            raise AttributeError("the observer's State has no field %r" % name) from None


def by_hours(hours: Any, table: dict[int, int], other: int = 0) -> Any:
    out: Any = other
    for h in (168, 96, 72, 48, 24):
        out = L.If(hours == h, table[h], out)
    return out


def mode_of(o: O) -> Any:
    return L.If(o.patient == 0, 0, L.If(o.infusing == 1, 2, 1))


def phase_of(o: O) -> Any:
    return L.If(o.course_over == 1, 2, L.If(o.in_break == 1, 1, 0))


def break_len(o: O) -> Any:
    return L.If(L.And(o.indication == 2, o.cycle >= 6), 80640, 20160)


def flow(o: O) -> Any:
    """The flow the label allows now: the bag's table rate while infusing, else none."""
    return L.If(o.infusing == 1, by_hours(o.bag_hours, _RATE), 0)


def infused_x60(o: O) -> Any:
    """60 x the volume (uL) given from the bag: its table rate times its minutes (linear per duration)."""
    out: Any = 0
    for h in (168, 96, 72, 48, 24):
        out = L.If(o.bag_hours == h, _RATE[h] * o.bag_infused_min, out)
    return out


def _same(*names: str) -> list[tuple[str, Callable[[S, O], Any]]]:
    return [("k.%s == o.%s" % (k, o), (lambda ks, os_, k=k, o=o: ks._f[k] == os_._f[PREFIX + o]))
            for k, o in (n.split("=") if "=" in n else (n, n) for n in names)]


# (text, fn(k, o)): each conjunct of the relational invariant
RELATION: list[tuple[str, Callable[[S, O], Any]]] = [
    ("k.mode == (0 no patient, 2 infusing, else 1)", lambda k, o: k.mode == mode_of(o)),
    ("no patient -> not infusing", lambda k, o: L.Implies(o.patient == 0, o.infusing == 0)),
    ("k.motor_ul_per_h == the table rate of o.bag_hours while infusing, else 0",
     lambda k, o: k.motor_ul_per_h == flow(o)),
    *_same("now_min=clock_min", "fault", "patient_id", "indication", "weight_g", "bsa_cm2",
           "max_cycles=course_cycles", "cycle", "cycle_run_min=cycle_infused_min", "free_min=break_min",
           "step_run_min=step_infused_min", "step_premed_done=step_premed", "need_premed=premed_due",
           "need_supervision=supervision_due", "supervision_acked=supervision_given",
           "int_start_min=stopped_at_min", "int_unknown=stop_unknown", "int_rx=stop_for_reaction",
           "cycle_ask=ask_cycle", "int_decided=cycle_goes_on", "reinit_needed=reinit_due",
           "rx_crs=crs", "rx_icans=icans", "rx_icans_onset_min=icans_onset_min", "rx_icans_g3_min=icans_g3_min",
           "rx_neuro=neuro", "rx_neuro_onset_min=neuro_onset_min", "rx_neuro_g3_min=neuro_g3_min",
           "rx_seizure=seizure", "rx_seizure_onset_min=seizure_onset_min", "rx_seizure_g3_min=seizure_g3_min",
           "rx_other=other", "rx_other_onset_min=other_onset_min", "run_ng_per_day=dose_given_ng",
           "seizures", "decision_pending=asking_other4", "locked=discontinued", "overdose_min=overdose_at_min",
           "bag_loaded=bag", "bag_id", "last_bag_id", "bag_ng_per_day", "bag_volume_ul",
           "bag_run_min=bag_infused_min", "bag_room_min", "bag_in_window=bag_low", "booked_min",
           "acc_ng=carry_ng", "day_min=window_min", "day_ng=window_ng", "day_cap_ng=window_cap_ng",
           "int_reason=stop_reason", "lock_reason=discontinued_for", "bag_ng=bag_given_ng",
           "cycle_ng=cycle_given_ng"),
    # each alarm bit of the protocol is the observer's alarm (EXT-pump); bit 128 is never given
    *[("k.alarm bit %d == o.%s" % (bit, flag),
       (lambda k, o, bit=bit, flag=flag: L.bit(k.alarm, bit) == (o._f[PREFIX + flag] == 1)))
      for bit, flag in ((1, "alarm_cap"), (2, "alarm_bag_end"), (4, "alarm_bag_expired"), (8, "alarm_power"),
                        (16, "alarm_fault"), (32, "alarm_reinit"), (64, "alarm_discontinued"))],
    ("k.alarm bit 128 is never set", lambda k, o: L.Not(L.bit(k.alarm, 128))),
    ("k.phase == (2 course over, 1 treatment-free, else 0)", lambda k, o: k.phase == phase_of(o)),
    ("k.cap_full_ng_per_day == L2-dose-28 of o.weight_g, o.bsa_cm2 (0 with no patient)",
     lambda k, o: k.cap_full_ng_per_day == L.If(o.patient == 1, label_full_cap(o), 0)),
    ("k.cap_low_ng_per_day == L2.2-step/L2.4-restart-9 of o.weight_g, o.bsa_cm2 (0 with no patient)",
     lambda k, o: k.cap_low_ng_per_day == L.If(o.patient == 1, label_low_cap(o), 0)),
    ("k.cap_ng_per_day == the cap in force by o's step and restart windows",
     lambda k, o: k.cap_ng_per_day == L.If(o.patient == 1, label_cap(o), 0)),
    ("k.low_left_min == 10080 - o.restart_infused_min", lambda k, o: k.low_left_min == 10080 - o.restart_infused_min),
    ("k.free_len_min == 56 days after R/R cycle 6, else 14 days (0 with no patient)",
     lambda k, o: k.free_len_min == L.If(o.patient == 1, break_len(o), 0)),
    ("k.premed_acked == (o.premed_at_min >= 0)", lambda k, o: k.premed_acked == L.If(o.premed_at_min >= 0, 1, 0)),
    ("k.premed_acked -> k.premed_ack_min == o.premed_at_min",
     lambda k, o: L.Implies(k.premed_acked == 1, k.premed_ack_min == o.premed_at_min)),
    ("k.bag_ul_per_h == the table rate of o.bag_hours", lambda k, o: k.bag_ul_per_h == by_hours(o.bag_hours, _RATE)),
    ("k.bag_duration_min == 60 * o.bag_hours", lambda k, o: k.bag_duration_min == 60 * o.bag_hours),
    ("k.bag_room_limit_min == Table 5 of o.bag_hours (0 with no bag)",
     lambda k, o: k.bag_room_limit_min == L.If(o.bag == 1, by_hours(o.bag_hours, _ROOM), 0)),
    ("60 * k.bag_ul + k.acc_ul == the table rate of o.bag_hours * o.bag_infused_min",
     lambda k, o: 60 * k.bag_ul + k.acc_ul == infused_x60(o)),
    ("no bag -> o.bag_hours == 0", lambda k, o: L.Implies(o.bag == 0, o.bag_hours == 0)),
    ("a bag -> o.bag_hours is a label duration",
     lambda k, o: L.Implies(o.bag == 1, L.In(o.bag_hours, (24, 48, 72, 96, 168)))),
]


def conjuncts(fields: dict[str, Any]) -> list[tuple[str, Any]]:
    """(text, value) of each conjunct over a product state's fields."""
    k, o = S(fields), O(fields)
    return [(text, fn(k, o)) for text, fn in RELATION]
