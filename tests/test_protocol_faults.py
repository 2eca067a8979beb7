"""Faults on the line between hil.client.Pump and a simulated board: dropped, corrupted, duplicated,
delayed and cut bytes, both ways. The client recovers by re-sending the same SEQ; the board answers
duplicates from its reply cache, so nothing is applied twice, and a damaged frame changes no therapy.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Any, Callable

import pytest

from blinpump.firmware import kernel as k
from blinpump.firmware import pump as fw_pump
from blinpump.hil import scenarios
from blinpump.hil.client import BoardRebooted, LinkError, Pump
from blinpump.hil.sim import BoardLink

from pumps import ready_patient


class ScriptedLink(BoardLink):
    """Applies planned faults: `host_faults[n]` / `board_faults[n]` act on the n-th chunk each way."""

    def __init__(self) -> None:
        self.host_faults: dict[int, Callable[[bytes], bytes]] = {}
        self.board_faults: dict[int, Callable[[bytes], bytes]] = {}
        self.to_host_n = 0
        self.to_board_n = 0
        self.held = b""
        super().__init__()

    def to_board(self, data: bytes) -> bytes:
        fault = self.board_faults.get(self.to_board_n)
        self.to_board_n += 1
        return fault(data) if fault else data

    def to_host(self, data: bytes) -> bytes:
        fault = self.host_faults.get(self.to_host_n)
        self.to_host_n += 1
        return fault(data) if fault else data

    def write(self, data: bytes) -> int:
        self.rx += self.held                 # a delayed answer finally arrives
        self.held = b""
        return super().write(data)

    def delay(self, data: bytes) -> bytes:
        self.held += data
        return b""


def drop(data: bytes) -> bytes:
    return b""


def corrupt(data: bytes) -> bytes:
    bad = bytearray(data)
    bad[len(bad) // 2] ^= 0x41
    return bytes(bad)


def duplicate(data: bytes) -> bytes:
    return data + data


def cut(data: bytes) -> bytes:
    return data[: len(data) // 2]


class CommandCounter:
    """Counts Controller.command calls per command id: what the pump actually applied."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.applied: Counter[int] = Counter()
        original = fw_pump.Controller.command

        def counted(ctrl: fw_pump.Controller, cid: int, args: list[int]) -> int:
            self.applied[cid] += 1
            return original(ctrl, cid, args)
        monkeypatch.setattr(fw_pump.Controller, "command", counted)


def _ready(link: ScriptedLink) -> Pump:
    p = Pump(link, timeout_s=0.02, retries=4)
    ready_patient(p)
    return p


@pytest.mark.parametrize("where,fault", [
    ("reply", drop), ("reply", corrupt), ("reply", duplicate), ("reply", cut), ("reply", "delay"),
    ("request", drop), ("request", corrupt), ("request", duplicate), ("request", cut),
], ids=lambda v: v if isinstance(v, str) else v.__name__)
def test_start_is_applied_once_whatever_happens_to_one_frame(
        monkeypatch: pytest.MonkeyPatch, where: str, fault: Any) -> None:
    counter = CommandCounter(monkeypatch)
    link = ScriptedLink()
    p = _ready(link)
    faults = link.host_faults if where == "reply" else link.board_faults
    n = link.to_host_n if where == "reply" else link.to_board_n
    faults[n] = link.delay if fault == "delay" else fault
    assert p.start().ok
    assert p.status()["mode"] == k.MODE_RUNNING
    assert counter.applied[fw_pump.CMD_START] == 1
    if fault is not duplicate:
        assert p.stats["resends"] >= 1
    # and the link is healthy again: the next command is answered first time
    resends = p.stats["resends"]
    assert p.stop().ok and p.stats["resends"] == resends
    assert counter.applied[fw_pump.CMD_STOP] == 1


def test_late_replies_to_an_earlier_attempt_are_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CommandCounter(monkeypatch)
    link = ScriptedLink()
    p = _ready(link)
    link.host_faults[link.to_host_n] = link.delay       # START's first reply arrives after the resend
    assert p.start().ok
    assert p.stop(k.STOP_CLINICIAN).ok                  # the cached duplicate of START's reply is stale
    assert p.stats["stale_replies"] >= 1
    assert counter.applied == Counter({fw_pump.CMD_SETUP: 1, fw_pump.CMD_BAG: 1, fw_pump.CMD_ACK: 2,
                                       fw_pump.CMD_START: 1, fw_pump.CMD_STOP: 1})


def test_a_dead_line_raises_link_error_and_applies_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CommandCounter(monkeypatch)
    link = ScriptedLink()
    p = _ready(link)
    link.to_board = lambda data: b""                    # type: ignore[method-assign]
    with pytest.raises(LinkError):
        p.start()
    assert counter.applied[fw_pump.CMD_START] == 0
    assert link.sim.board.controller.s.mode == k.MODE_STOPPED


def test_a_reboot_during_a_request_is_reported_not_guessed() -> None:
    link = ScriptedLink()
    p = _ready(link)
    assert p.start().ok
    p.inject_fault("power_cut_write", 10)
    with pytest.raises(BoardRebooted):
        p.advance(60)
    p.hello()
    s = p.status()
    assert s["mode"] == k.MODE_STOPPED and s["alarm"] & k.AL_POWER


def test_a_reboot_whose_banner_is_lost_is_still_reported() -> None:
    link = ScriptedLink()
    p = _ready(link)
    assert p.start().ok
    p.inject_fault("power_cut_write", 10)
    link.host_faults[link.to_host_n] = drop             # the boot event never reaches the host
    with pytest.raises(BoardRebooted):                  # the retry is refused: E_OUT_OF_STATE
        p.advance(60)


class NoisyLink(BoardLink):
    """Every chunk, each way, may be dropped, corrupted, duplicated, delayed or cut."""

    def __init__(self, seed: int, rate: float) -> None:
        self.rng = random.Random(seed)
        self.rate = rate
        self.held = b""
        self.faults: Counter[str] = Counter()
        super().__init__()

    def _mangle(self, data: bytes, kinds: tuple[str, ...]) -> bytes:
        if not data or self.rng.random() >= self.rate:
            return data
        kind = self.rng.choice(kinds)
        self.faults[kind] += 1
        if kind == "drop":
            return b""
        if kind == "corrupt":
            bad = bytearray(data)
            bad[self.rng.randrange(len(bad))] ^= self.rng.randrange(1, 256)
            return bytes(bad)
        if kind == "duplicate":
            return data + data
        if kind == "cut":
            return data[: self.rng.randrange(len(data))]
        self.held += data                                   # delay
        return b""

    def to_board(self, data: bytes) -> bytes:
        return self._mangle(data, ("drop", "corrupt", "duplicate", "cut"))

    def to_host(self, data: bytes) -> bytes:
        return self._mangle(data, ("drop", "corrupt", "duplicate", "cut", "delay"))

    def write(self, data: bytes) -> int:
        self.rx += self.held
        self.held = b""
        return super().write(data)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_scenarios_give_the_same_result_on_a_noisy_line(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    """Three standard scenarios over a line that damages 15% of the chunks each way: every scenario
    passes, each therapy command is applied exactly as often as on a clean line, and the pump ends in
    the same state."""
    chosen = scenarios.standard(["crs3-restart-9", "interruption-5h-reinit", "flush-refused"])

    counter = CommandCounter(monkeypatch)

    def run(link: BoardLink) -> tuple[list[scenarios.Result], Counter[int], dict[str, int]]:
        counter.applied.clear()
        with Pump(link, timeout_s=0.01, retries=12, advance_s_per_min=0.0) as p:
            results = scenarios.run_all(p, chosen)
            return results, Counter(counter.applied), p.status()

    clean_results, clean_applied, clean_status = run(BoardLink())
    noisy = NoisyLink(seed, rate=0.15)
    noisy_results, noisy_applied, noisy_status = run(noisy)
    assert all(r.ok for r in clean_results), scenarios.table(clean_results)
    assert all(r.ok for r in noisy_results), scenarios.table(noisy_results)
    assert noisy_applied == clean_applied
    assert noisy_status == clean_status
    assert sum(noisy.faults.values()) >= 10, noisy.faults
