"""Timeline plots (hil/plot.py): samples recorded during scenario runs, drawn as PNG."""
from __future__ import annotations

from pathlib import Path

import pytest

from blinpump.firmware import kernel as k
from blinpump.hil import cli, scenarios
from blinpump.hil.client import Pump
from blinpump.hil.plot import Timeline, plot_timelines
from blinpump.hil.pytest_plugin import pump, pump_board, pump_session  # noqa: F401  (fixtures; the plugin may not be registered)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert 10_000 < len(data) < 5_000_000


def _run(p: Pump, sc_id: str) -> Timeline:
    tl = Timeline()
    result = scenarios.run(p, scenarios.standard([sc_id])[0], timeline=tl)
    assert result.ok, scenarios.table([result])
    return tl


def test_timelines_of_two_scenarios_are_recorded_and_drawn(pump: Pump, tmp_path: Path) -> None:  # noqa: F811
    names = scenarios.model_names({"indication": "rr", "weight_kg": 70})
    step_up = _run(pump, "rr-cycle1-step-up")
    reinit = _run(pump, "interruption-5h-reinit")

    # R/R cycle 1: 9 mcg/day for 7 days, then 28 mcg/day; the rate never above the cap in force
    assert (names["cap_low"], names["cap_full"]) == (9000, 28000)
    assert [r for r in dict.fromkeys(step_up.rates) if r] == [9000, 28000]
    assert all(r <= c for r, c in zip(step_up.rates, step_up.caps))
    t, rate, cap, _ = step_up.series()
    assert all(r <= c for r, c in zip(rate, cap))
    assert step_up.times_min[-1] - step_up.times_min[0] == 14 * 1440
    assert len(step_up.samples) > 14 * 4                    # long advances sampled every <= 6 h
    assert max(b - a for a, b in zip(step_up.times_min, step_up.times_min[1:])) <= 360
    assert step_up.course[-1] == 7 * 9000 + 7 * 28000
    assert step_up.course == sorted(step_up.course)
    assert [kind for _, kind in step_up.bag_changes()] == ["loaded", "removed", "loaded", "removed"]
    assert any("BAG_END" in raised for _, raised, _ in step_up.alarm_changes())

    # a 3 h pause, then a 5 h interruption (REINIT); the run ends restarted
    spans = reinit.interruptions()
    assert [(b - a, ended) for a, b, ended in spans] == [(180, True), (300, True)]
    assert max(b - a for a, b, _ in spans) >= 240
    assert spans[1][0] == 11 * 60 + 3 * 60 + reinit.times_min[0]
    assert any("REINIT" in raised for _, raised, _ in reinit.alarm_changes())
    assert reinit.samples[-1].mode == k.MODE_RUNNING

    png = plot_timelines({"rr-cycle1-step-up": step_up, "interruption-5h-reinit": reinit}, tmp_path / "t.png",
                         title="two scenarios")
    assert png == tmp_path / "t.png"
    _assert_png(png)


def test_recording_a_timeline_does_not_change_a_scenario(pump: Pump) -> None:  # noqa: F811
    sc = scenarios.standard(["power-cut-mid-bag"])[0]
    plain = scenarios.run(pump, sc)
    tl = Timeline()
    sampled = scenarios.run(pump, sc, timeline=tl)
    assert plain.ok and sampled.ok, scenarios.table([plain, sampled])
    assert (plain.steps_run, plain.sim_min) == (sampled.steps_run, sampled.sim_min)
    assert len(tl.samples) > len(sc.steps)
    assert any(ended and b - a == 30 for a, b, ended in tl.interruptions())    # the 30 min outage


def test_bench_plot_writes_a_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "plots" / "bench.png"
    assert cli.bench_main(["flush-refused", "interruption-5h-reinit", "--plot", str(out)]) == 0
    assert "plot: %s" % out in capsys.readouterr().out
    _assert_png(out)
