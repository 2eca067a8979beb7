"""A patient ready to start on a pump over the client (shared by the tests that drive one)."""
from __future__ import annotations

from blinpump.firmware import kernel as k
from blinpump.hil.client import Pump

PID = 4242


def ready_patient(p: Pump) -> None:
    """MRD+, 70 kg, a 48-hour bag, both acknowledgements: START would run."""
    assert p.setup(PID, k.IND_MRD, 70000, 0) == k.OK
    assert p.bag(PID, 1, 56000, 240000, 5000, 48, 0) == k.OK
    p.ack(k.ACK_PREMED)
    p.ack(k.ACK_SUPERVISION)


def running_patient(p: Pump) -> None:
    """ready_patient, started: the motor runs."""
    ready_patient(p)
    assert p.start() == k.OK
