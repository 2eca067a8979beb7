"""A simulated pump whose clock misbehaves, and the oracle checked after every step.

Shared by tests/mpy/test_clock_mpy.py (CPython and MicroPython), tests/test_clock_faults.py
(Hypothesis) and bench/hardening_clock.py (the long campaign). Plain Python that runs on
MicroPython too: no typing, no dataclasses, no f-strings.

The rig knows the real time (`true_ms`) that the pump does not; the clock it gives the
controller (simhal.SimClock) may wrap, jump forwards or backwards, or come late. After every
step the oracle checks:
- dose: day_ng <= day_cap_ng <= the patient's full cap, and any 1440 consecutive kernel
  minutes deliver at most that cap (L2-dose-28); a bag never delivers more drug or volume than
  it holds (L2.5-errors); the record (course_ng, course_ul) never goes down;
- the motor: it runs exactly at the bag's rate while the kernel runs, never while a fault is
  latched;
- interruptions, in real time: once the motor has been stopped for 4 h or more of real time,
  re-initiation is pending for an open interruption, and a start without both
  acknowledgements is refused (L2-reinit-4h, L2-premed);
- the clock: a gap of 0 to MAX_GAP_MS is counted to the minute (no minute lost or added, the
  rest carried in pending_ms) and is never a fault, wrap-around included; a backwards gap or a
  longer forward one is a clock fault that stops the motor, discards the bag and leaves an
  interrupted infusion of unknown length.
A failed check raises AssertionError when `strict` (tests), else it is counted (bench).

Contract used for known outages (the board reports them through Controller.boot): the outage
is measured from the last counted minute, rounded up. The part of a minute the controller had
in RAM (pending_ms) is lost at the reboot, so an outage measured from the power cut alone could
under-count an interruption by up to a minute per reboot. A board without a battery-backed
clock reports -1 (unknown), which is always safe.
"""
from fw import kernel as k
from fw import journal, pump, simhal

PID = 7
MS_PER_MIN = pump.MS_PER_MIN
REINIT_MS = 240 * MS_PER_MIN            # L2-reinit-4h, in real time
DAY_MIN = 1440
WRAP_PERIOD_MS = 1 << 30                # time.ticks_ms on most MicroPython ports


class Rig:
    def __init__(self, period_ms=0, start_ms=0, strict=True):
        self.storage = simhal.MemStorage(journal.TOTAL_BYTES)
        self.clock = simhal.SimClock(start_ms, period_ms)
        self.motor = simhal.SimMotor()
        self.strict = strict
        self.true_ms = 0                # real time since the rig was built
        self.last_run_ms = -1           # real time the motor was last running (-1: never)
        self.bag_seq = -1               # the accepted bag the rig knows the contents of
        self.bag_drug_ng = 0
        self.bag_volume_ul = 0
        self.course_ng = 0
        self.course_ul = 0
        self.deliveries = []            # (kernel minute, ng) of the last 1440 kernel minutes
        self.steps = 0
        self.clock_faults = 0           # polls the controller answered with a clock fault
        self.overdoses = 0              # steps with a dose, bag or motor check failed
        self.under_counted = 0          # steps with an interruption check failed
        self.other = 0                  # other failed checks (clock accounting, fault handling)
        self.wraps = 0                  # times the tick counter wrapped
        self.long_off_checks = 0        # checks made with the motor off for 4 h or more of real time
        self.failures = []              # the first few messages
        self.c = None
        self._controller()
        self.c.boot(-1)
        self.check()

    # ------------------------------------------------------------ plant
    def _controller(self):
        c = pump.Controller(self.storage, self.clock, self.motor)
        plain_tick = c.tick

        def tick():                     # record each minute's delivery for the 24 h window
            before = c.s.course_ng
            plain_tick()
            if c.s.course_ng > before:
                self.deliveries.append((c.s.now_min, c.s.course_ng - before))
        c.tick = tick
        self.c = c
        return c

    # ------------------------------------------------------------ clock behaviour
    def minutes(self, n):
        """n minutes of a good clock, one poll per minute (the simulated board's ADVANCE)."""
        for _ in range(n):
            self.clock_step(MS_PER_MIN, MS_PER_MIN)

    def clock_step(self, clock_ms, real_ms):
        """The clock moves by clock_ms while real_ms pass, then the board polls.
        For a wrapping clock clock_ms must not alias: |clock_ms| < period - MAX_GAP_MS
        (a board's watchdog keeps every real stall far below that)."""
        period = self.clock.period
        if period:
            assert -(period - pump.MAX_GAP_MS) < clock_ms < period - pump.MAX_GAP_MS
        c = self.c
        s = c.s
        was_running = self.motor.ul_per_h > 0
        open_before = s.mode == k.MODE_RUNNING or (s.mode == k.MODE_STOPPED and s.int_start_min >= 0)
        now_before = s.now_min
        pending_before = c.pending_ms
        carry_before = c.carry_ms          # stopped time before a START, counted again at a stop
        fault_before = s.fault
        ticks_before = self.clock.ms()
        self.clock.advance(clock_ms)
        if period and clock_ms > 0 and self.clock.ms() < ticks_before:
            self.wraps += 1
        self.true_ms += real_ms
        n = c.poll()
        s = c.s
        if clock_ms < 0 or clock_ms > pump.MAX_GAP_MS:
            self.clock_faults += 1
            self._expect(n == -1, "other", "a gap of %d ms was not a clock fault" % clock_ms)
            self._expect(s.fault == 1 and s.bag_loaded == 0 and self.motor.ul_per_h == 0, "other",
                         "a clock fault left fault %d, bag %d, motor %d" % (s.fault, s.bag_loaded, self.motor.ul_per_h))
            if open_before:
                self._expect(s.int_unknown == 1 and s.reinit_needed == 1, "under",
                             "a clock fault left the interruption known (L2-reinit-4h)")
            self._expect(s.now_min == now_before and c.pending_ms == pending_before + carry_before, "other",
                         "a clock fault counted time: now_min %d -> %d" % (now_before, s.now_min))
        else:
            total = pending_before + clock_ms
            self._expect(n >= 0 and s.fault == fault_before, "other",
                         "a gap of %d ms (wrap period %d) was taken as a clock fault" % (clock_ms, period))
            if s.now_min < k.COUNTER_MAX:
                self._expect(s.now_min - now_before == total // MS_PER_MIN and c.pending_ms == total % MS_PER_MIN,
                             "other", "%d ms with %d pending counted as %d min, %d pending" % (
                                 clock_ms, pending_before, s.now_min - now_before, c.pending_ms))
        if was_running:
            self.last_run_ms = self.true_ms     # it ran until this poll at least
        self.check()
        return n

    def reboot(self, outage_ms, ticks_after_ms=0):
        """Power off for outage_ms of real time, then on. known=False: the board reports -1."""
        self.reboot_as(outage_ms, True, ticks_after_ms)

    def reboot_unknown(self, outage_ms, ticks_after_ms=0):
        self.reboot_as(outage_ms, False, ticks_after_ms)

    def reboot_as(self, outage_ms, known, ticks_after_ms):
        if self.motor.ul_per_h > 0:
            self.last_run_ms = self.true_ms     # the cut stops the motor
        pending = self.c.pending_ms              # lost with the RAM
        self.motor.ul_per_h = 0
        self.true_ms += outage_ms
        self.clock.restart(ticks_after_ms)       # a reset board's tick counter starts again
        self._controller()
        outage_min = -((pending + outage_ms) // -MS_PER_MIN) if known else -1
        self.c.boot(outage_min)
        if not known:
            s = self.c.s
            self._expect(s.bag_loaded == 0, "other", "an unknown outage kept the bag (L2.6-bag-*)")
        self.check()

    # ------------------------------------------------------------ therapy commands
    def command(self, cid, args):
        was_running = self.motor.ul_per_h > 0
        status = self.c.command(cid, args)
        if was_running:
            self.last_run_ms = self.true_ms
        self.check()
        return status

    def setup(self, indication=k.IND_MRD, weight_g=70000, bsa_cm2=0):
        return self.command(pump.CMD_SETUP, [PID, indication, weight_g, bsa_cm2, 0])

    def bag(self, hours=24, ng_per_day=-1):
        """A bag of ng_per_day (default: the cap in force) for `hours`; drug = rate x days,
        so the bag's own rate is exact and its drug the most it may deliver."""
        s = self.c.s
        if ng_per_day < 0:
            ng_per_day = s.cap_ng_per_day
        days = hours // 24
        drug_ng = ng_per_day * days
        rate = k._rate_ul_per_h(hours)      # EXT-rates: the table rate
        volume_ul = rate * hours        # no overfill: the bag holds what it infuses (EXT-rates)
        status = self.command(pump.CMD_BAG, [PID, self.c.s.last_bag_id + 1, drug_ng, volume_ul, rate, hours,
                                             1 if hours >= 72 else 0, 0, 0])
        if status == k.OK:
            self.bag_seq = self.c.s.bag_seq
            self.bag_drug_ng = drug_ng
            self.bag_volume_ul = volume_ul
        return status

    def ack(self):
        self.command(pump.CMD_ACK, [k.ACK_PREMED])
        return self.command(pump.CMD_ACK, [k.ACK_SUPERVISION])

    def start(self):
        return self.command(pump.CMD_START, [])

    def stop(self, reason=k.STOP_CLINICIAN):
        return self.command(pump.CMD_STOP, [reason])

    def clear_fault(self):
        return self.command(pump.CMD_CLEAR_FAULT, [])

    def therapy(self, hours=24):
        """Whatever it takes to run: set-up, fault cleared, a bag, acknowledgements, start."""
        s = self.c.s
        if s.mode == k.MODE_NO_PATIENT:
            if s.fault == 1:
                self.clear_fault()
            self.setup()
        if self.c.s.fault == 1:
            self.clear_fault()
        if self.c.s.cycle_ask == 1:         # an interruption of unknown length: go on (L2.4-new-cycle)
            self.command(pump.CMD_CYCLE_DECISION, [0])
        if self.c.s.bag_loaded == 0:
            self.bag(hours)
        self.ack()
        return self.start()

    # ------------------------------------------------------------ oracle
    def _expect(self, ok, kind, msg):
        if ok:
            return
        if kind == "dose":
            self.overdoses += 1
        elif kind == "under":
            self.under_counted += 1
        else:
            self.other += 1
        if len(self.failures) < 20:
            self.failures.append(msg)
        if self.strict:
            raise AssertionError(msg)

    def check(self):
        self.steps += 1
        c = self.c
        s = c.s
        running = s.mode == k.MODE_RUNNING
        if self.motor.ul_per_h > 0:
            self.last_run_ms = self.true_ms
        # the motor
        self._expect(self.motor.ul_per_h == (s.bag_ul_per_h if running else 0), "dose",
                     "motor at %d uL/h, kernel mode %d bag %d uL/h" % (self.motor.ul_per_h, s.mode, s.bag_ul_per_h))
        self._expect(s.fault == 0 or (not running and self.motor.ul_per_h == 0), "dose",
                     "the motor runs with a fault latched")
        # dose in the 24 h window (L2-dose-28)
        cap = s.cap_full_ng_per_day
        self._expect(0 <= s.day_ng <= s.day_cap_ng <= k.CAP_FULL_NG_PER_DAY and s.day_cap_ng <= max(cap, 0), "dose",
                     "day_ng %d, day_cap_ng %d, cap %d" % (s.day_ng, s.day_cap_ng, cap))
        d = self.deliveries
        while d and d[0][0] <= s.now_min - DAY_MIN:
            d.pop(0)
        window_ng = 0
        for _, ng in d:
            window_ng += ng
        self._expect(window_ng <= cap, "dose", "%d ng in the last 1440 kernel minutes, cap %d" % (window_ng, cap))
        # the bag (L2.5-errors)
        if s.bag_loaded == 1 and s.bag_seq == self.bag_seq:
            self._expect(s.bag_ng <= self.bag_drug_ng and s.bag_ul <= self.bag_volume_ul, "dose",
                         "bag delivered %d ng / %d uL of %d ng / %d uL" % (s.bag_ng, s.bag_ul, self.bag_drug_ng,
                                                                          self.bag_volume_ul))
        # the record
        self._expect(s.course_ng >= self.course_ng and s.course_ul >= self.course_ul, "dose",
                     "the record went down: %d ng -> %d ng" % (self.course_ng, s.course_ng))
        self.course_ng = s.course_ng
        self.course_ul = s.course_ul
        # interruptions in real time (L2-reinit-4h, L2-premed)
        if not running and self.last_run_ms >= 0 and self.true_ms - self.last_run_ms >= REINIT_MS:
            self.long_off_checks += 1
            off_min = (self.true_ms - self.last_run_ms) // MS_PER_MIN
            if s.mode == k.MODE_STOPPED and s.int_start_min >= 0:
                self._expect(s.reinit_needed == 1, "under",
                             "stopped %d min of real time, the kernel counts %d, no re-initiation pending"
                             % (off_min, s.now_min - s.int_start_min))
            self._expect(start_without_acks(s) != k.OK, "under",
                         "stopped %d min of real time, a start without acknowledgements is accepted" % off_min)


def start_without_acks(s):
    """What `start` would answer on a copy of the state with both acknowledgements withdrawn."""
    t = k.State()
    for name in journal.FIELDS:
        setattr(t, name, getattr(s, name))
    t.premed_acked = 0
    t.supervision_acked = 0
    return k.start(t)
