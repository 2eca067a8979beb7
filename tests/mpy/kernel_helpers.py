"""Shared set-up for the kernel and controller tests; runs on CPython and on MicroPython."""
from fw import kernel as k
from fw import journal, pump, simhal

PID = 4242
MIN_PER_DAY = 1440


CONS_CYCLES = 4     # the site's consolidation course in these tests (L2.3-course)


def course_cycles(indication):
    return CONS_CYCLES if indication == k.IND_CONS else 0


def patient(indication=k.IND_MRD, weight_g=70000, bsa_cm2=0):
    s = k.State()
    assert k.setup(s, PID, indication, weight_g, bsa_cm2, course_cycles(indication)) == k.OK
    return s


def rate(hours):
    """EXT-rates: the kernel's table rate for a duration (uL/h), 0 if none."""
    return k._rate_ul_per_h(hours)


def infused(hours):
    """The volume a bag infuses at the table rate (a bag with no overfill holds exactly this)."""
    return rate(hours) * hours if rate(hours) else 240000


def prepared_ng(ng_per_day, hours, volume_ul):
    """Drug to put in a bag of volume_ul so that it delivers ng_per_day (EXT-rates)."""
    return ng_per_day * volume_ul // (rate(hours) * 24)


def load_bag(s, ng_per_day, hours=24, volume_ul=None, room_min=0, fridge_min=0):
    """A bag at the table rate; by default without overfill (it holds what it infuses)."""
    if volume_ul is None:
        volume_ul = infused(hours)
    drug_ng = prepared_ng(ng_per_day, hours, volume_ul)
    return k.bag(s, PID, s.last_bag_id + 1, drug_ng, volume_ul, rate(hours), hours, 1 if hours >= 72 else 0,
                 room_min, fridge_min)


def ack_all(s):
    k.ack(s, k.ACK_PREMED)
    k.ack(s, k.ACK_SUPERVISION)


def start_bag(s, ng_per_day, hours=24):
    """Load a bag, acknowledge what is needed, start; returns the start status."""
    st = load_bag(s, ng_per_day, hours)
    if st != k.OK:
        return st
    ack_all(s)
    return k.start(s)


def run(s, minutes):
    for _ in range(minutes):
        k.tick(s)
        assert k.invariant(s)


def new_board(storage=None):
    """A controller on simulated storage (erased unless given), clock and motor."""
    storage = storage or simhal.MemStorage(journal.TOTAL_BYTES)
    c = pump.Controller(storage, simhal.SimClock(), simhal.SimMotor())
    return c, storage
