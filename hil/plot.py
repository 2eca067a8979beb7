"""Timelines of scenario runs, drawn as PNG (matplotlib, Agg backend).

    tl = Timeline()
    scenarios.run(pump, scenario, timeline=tl)       # samples pump.status() after every step
    plot_timelines({scenario.id: tl}, "build/timeline.png")

A Timeline holds STATUS samples in simulated minutes (status()["now_min"]); the drug rate is the
bag's ng/day while the pump runs and 0 otherwise. From the samples it derives interruptions
(running -> not running -> running), bag changes (bag_loaded transitions) and alarm changes
(AL_* bits raised or cleared). Only plot_timelines needs matplotlib, and imports it itself.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blinpump.firmware import kernel as k

ALARM_NAMES = {v: n[3:] for n, v in vars(k).items() if n.startswith("AL_")}
DEFAULT_CHUNK_MIN = 360         # long ADVANCE steps are sampled at least every 6 h of simulated time


def alarm_bits(alarm: int) -> list[str]:
    return [name for bit, name in sorted(ALARM_NAMES.items()) if alarm & bit]


@dataclass
class Sample:
    t_min: int
    mode: int
    rate_ng_per_day: int        # bag_ng_per_day while running, else 0
    cap_ng_per_day: int
    course_ng: int
    alarm: int
    bag_loaded: int
    int_start_min: int


@dataclass
class Timeline:
    """STATUS samples of one run, in simulated time."""
    chunk_min: int = DEFAULT_CHUNK_MIN
    samples: list[Sample] = field(default_factory=list)

    def sample(self, pump: Any) -> Sample:
        return self.add(pump.status())

    def add(self, s: dict[str, int]) -> Sample:
        running = s["mode"] == k.MODE_RUNNING
        smp = Sample(int(s["now_min"]), int(s["mode"]), int(s["bag_ng_per_day"]) if running else 0,
                     int(s["cap_ng_per_day"]), int(s["course_ng"]), int(s["alarm"]),
                     int(s["bag_loaded"]), int(s.get("int_start_min", -1)))
        self.samples.append(smp)
        return smp

    # ---- series
    @property
    def times_min(self) -> list[int]:
        return [s.t_min for s in self.samples]

    @property
    def rates(self) -> list[int]:
        return [s.rate_ng_per_day for s in self.samples]

    @property
    def caps(self) -> list[int]:
        return [s.cap_ng_per_day for s in self.samples]

    @property
    def course(self) -> list[int]:
        return [s.course_ng for s in self.samples]

    def series(self) -> tuple[list[int], list[int], list[int], list[int]]:
        """(t_min, rate, cap, course_ng) for drawing: the samples, plus a point where an
        interruption began between two samples (the kernel's int_start_min), so the rate drops
        and the cumulative dose levels off when the motor stopped, not at the next sample."""
        t: list[int] = []
        rate: list[int] = []
        cap: list[int] = []
        course: list[int] = []
        prev: Sample | None = None
        for s in self.samples:
            if (prev is not None and prev.mode == k.MODE_RUNNING and s.mode != k.MODE_RUNNING
                    and prev.t_min <= s.int_start_min < s.t_min):
                t.append(s.int_start_min)
                rate.append(0)
                cap.append(prev.cap_ng_per_day)
                course.append(s.course_ng)      # nothing is delivered while stopped
            t.append(s.t_min)
            rate.append(s.rate_ng_per_day)
            cap.append(s.cap_ng_per_day)
            course.append(s.course_ng)
            prev = s
        return t, rate, cap, course

    # ---- derived features
    def interruptions(self) -> list[tuple[int, int, bool]]:
        """(start_min, end_min, ended) of every stop after running; an interruption still open at
        the last sample ends there with ended=False. The start is the kernel's int_start_min when
        it has one (exact), else the first sample seen stopped."""
        spans: list[tuple[int, int, bool]] = []
        start: int | None = None
        prev: Sample | None = None
        for s in self.samples:
            running = s.mode == k.MODE_RUNNING
            if prev is not None and prev.mode == k.MODE_RUNNING and not running:
                exact = prev.t_min <= s.int_start_min <= s.t_min
                start = s.int_start_min if exact else s.t_min
            elif start is not None and running:
                spans.append((start, s.t_min, True))
                start = None
            prev = s
        if start is not None and prev is not None:
            spans.append((start, prev.t_min, False))
        return spans

    def bag_changes(self) -> list[tuple[int, str]]:
        """(t_min, "loaded" | "removed") at every bag_loaded transition."""
        out = []
        for a, b in zip(self.samples, self.samples[1:]):
            if a.bag_loaded != b.bag_loaded:
                out.append((b.t_min, "loaded" if b.bag_loaded else "removed"))
        if self.samples and self.samples[0].bag_loaded:
            out.insert(0, (self.samples[0].t_min, "loaded"))
        return out

    def alarm_changes(self) -> list[tuple[int, list[str], list[str]]]:
        """(t_min, bits raised, bits cleared) at every change of the alarm word."""
        out = []
        prev = 0
        for s in self.samples:
            if s.alarm != prev:
                out.append((s.t_min, alarm_bits(s.alarm & ~prev), alarm_bits(prev & ~s.alarm)))
            prev = s.alarm
        return out


# ---------------------------------------------------------------- drawing

_RATE, _CAP, _DOSE, _INT, _BAG, _ALARM = "#1f77b4", "#d62728", "#2ca02c", "#ffbf80", "#7f4fbf", "#e07000"


def plot_timelines(timelines: dict[str, Timeline], path: str | Path, title: str | None = None) -> Path:
    """One panel per run (stacked): rate and cap in force (mcg/day, left axis), cumulative course
    dose (mcg, right axis), shaded interruptions, bag changes (vertical lines), alarms raised
    (markers, labelled). x axis: simulated days. Writes a PNG; returns its path."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    items = [(name, tl) for name, tl in timelines.items() if tl.samples] or [("(no samples)", Timeline())]
    n = len(items)
    fig, axes = plt.subplots(n, 1, figsize=(11, 0.9 + 2.5 * n), squeeze=False)
    for ax, (name, tl) in zip(axes[:, 0], items):
        _panel(ax, name, tl)
    handles = [Line2D([], [], color=_RATE, lw=2, label="drug rate (mcg/day)"),
               Line2D([], [], color=_CAP, lw=1.5, ls="--", label="cap in force (mcg/day)"),
               Line2D([], [], color=_DOSE, lw=1.5, label="cumulative course dose (mcg, right axis)"),
               Patch(facecolor=_INT, alpha=0.5, label="interruption (length)"),
               Line2D([], [], color=_BAG, lw=1, ls=":", label="bag loaded / removed"),
               Line2D([], [], color=_ALARM, marker="v", ls="", label="alarm raised")]
    h = fig.get_figheight()
    if title:
        fig.suptitle(title, y=1.0 - 0.08 / h, va="top", fontsize=11)
    legend_top = 1.0 - (0.4 if title else 0.05) / h
    fig.legend(handles=handles, loc="upper center", ncol=3, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, legend_top))
    fig.tight_layout(rect=(0, 0, 1, legend_top - 0.35 / h), h_pad=1.2)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


def _panel(ax: Any, name: str, tl: Timeline) -> None:
    if not tl.samples:
        ax.set_axis_off()
        ax.set_title(name, fontsize=9)
        return
    times, rate_ng, cap_ng, course_ng = tl.series()
    days = [t / 1440 for t in times]
    t0, t1 = days[0], days[-1]
    width = max(t1 - t0, 1 / 24)
    ax.set_xlim(t0 - width * 0.01, t0 + width * 1.01)
    rates = [r / 1000 for r in rate_ng]
    ax.fill_between(days, rates, step="post", color=_RATE, alpha=0.18, lw=0, zorder=2)
    ax.step(days, rates, where="post", color=_RATE, lw=2, zorder=3)
    ax.step(days, [c / 1000 for c in cap_ng], where="post", color=_CAP, lw=1.5, ls="--", zorder=4)
    ymax = max(rate_ng + cap_ng + [1]) / 1000
    ax.set_ylim(0, ymax * 1.3)
    ax.set_ylabel("mcg/day", fontsize=8)
    ax.set_xlabel("simulated day", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.25)
    for start, end, ended in tl.interruptions():
        ax.axvspan(start / 1440, end / 1440, color=_INT, alpha=0.5, lw=0, zorder=1)
        if end - start >= 0.08 * width * 1440:
            ax.text((start + end) / 2880, ymax * 0.04, "%dh%02d%s" % ((end - start) // 60, (end - start) % 60,
                                                                     "" if ended else "+"),
                    ha="center", va="bottom", fontsize=7, color="#804000", zorder=5)
    for t, kind in tl.bag_changes():
        ax.axvline(t / 1440, color=_BAG, lw=1, ls=":" if kind == "loaded" else "-.", alpha=0.8, zorder=2)
    level = 0
    last_t = None
    for t, raised, _cleared in tl.alarm_changes():
        if not raised:
            continue
        x = t / 1440
        level = level + 1 if last_t is not None and x - last_t < 0.12 * width else 0
        last_t = x
        y = ymax * (1.22 - 0.09 * (level % 3))
        ax.plot([x], [y], marker="v", color=_ALARM, ls="", ms=6, zorder=6, clip_on=False)
        right = x > t0 + 0.8 * width         # label on the left of markers near the right edge
        ax.annotate("+".join(raised), (x, y), xytext=(-5 if right else 5, 0), textcoords="offset points",
                    fontsize=7, color=_ALARM, va="center", ha="right" if right else "left", zorder=6)
    ax2 = ax.twinx()
    ax2.plot(days, [c / 1000 for c in course_ng], color=_DOSE, lw=1.5, zorder=3)
    ax2.set_ylim(0, max(max(course_ng) / 1000, 1) * 1.3)
    ax2.set_ylabel("course mcg", fontsize=8, color=_DOSE)
    ax2.tick_params(labelsize=8, colors=_DOSE)
    ax.set_title(name, fontsize=9, loc="left")
