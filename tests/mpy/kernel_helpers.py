"""Shared set-up for the kernel tests; runs on CPython and on MicroPython."""
from fw import kernel as k

PID = 4242
MIN_PER_DAY = 1440


def patient(indication=k.IND_MRD, weight_g=70000, bsa_cm2=0):
    s = k.State()
    assert k.setup(s, PID, indication, weight_g, bsa_cm2) == k.OK
    return s


def load_bag(s, ng_per_day, hours=24, volume_ul=240000, room_min=0, fridge_min=0):
    drug_ng = ng_per_day * hours // 24
    return k.bag(s, PID, s.last_bag_id + 1, drug_ng, volume_ul, hours, 1 if hours >= 72 else 0, room_min, fridge_min)


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
