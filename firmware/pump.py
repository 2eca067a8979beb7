"""The controller: kernel + record + clock + motor. The only code that moves the motor.

Order of every step (write-ahead): the kernel decides, the state record is written, then the
events that describe the change are logged, and only then does the motor get the new rate.
A power cut between any two leaves a record that counts the next minute as delivered when it
may not be (never lower than delivered), and never an event whose state is not on the device
(a journal that says "locked" with a state that does not).

If the record cannot be written (flash full, I/O error), nothing is acknowledged and nothing
is applied: the command answers E_FAULT, its effect is undone (a seizure entered then is not
counted: re-entering it once storage works counts it once, L2.4-seizure), the kernel latches
the fault and stops the motor, and the controller writes the faulted state and its events as
soon as storage works again (retried on every poll). A minute tick whose record cannot be
written stops the motor the same way; the time it counted stays counted.
"""
from . import kernel, journal

MS_PER_MIN = 60000
MAX_GAP_MS = 5 * MS_PER_MIN     # longest gap between polls taken as a late tick; longer: clock fault
# catch-up of a late tick, bounded per poll: enough for the longest tolerated gap plus the
# remainder carried, so a tolerated late tick never leaves whole minutes for a later poll
MAX_TICKS_PER_POLL = MAX_GAP_MS // MS_PER_MIN + 1
FAULT_CLOCK = 1                 # EV_FAULT kind of a clock fault (b: the gap in seconds)
FAULT_RECORD = 2                # EV_FAULT kind of a failed record write
FAULT_MOTOR = 3                 # EV_FAULT kind of a motor that did not take its rate
DECISION_OTHER4 = 1             # EV_DECISION a: the L2.4-other-4 decision (b: 1 discontinue)
DECISION_CYCLE = 2              # EV_DECISION a: the L2.4-new-cycle decision (b: 1 new cycle)
GAP_LOG_MAX_S = 1000000000      # the logged gap is clamped to the journal's int32
# the board's own refusal (docs/protocol.md; firmware/codes.py): START while an occlusion, air in
# line or door condition still exists (EXT-pump; IEC 60601-2-24: a pump does not restart into a
# line alarm whose cause is still there, and acknowledging it does not clear it)
E_LINE_ALARM = 28
BAG_BITS = kernel.AL_BAG_END | kernel.AL_BAG_EXPIRED
MAX_PENDING_EVENTS = 16         # events of one step waiting for their state to be on the device
                                # (a step logs at most 11: therapy end or command, what was
                                # entered (two for a weight), bag refused, stop, alarm, lock,
                                # cycle, re-initiation, fault; a failed write adds one more
                                # alarm and the fault's own)

# command ids shared with the serial protocol: id -> (name, kernel function, arity)
CMD_SETUP = 1
CMD_BAG = 2
CMD_START = 3
CMD_STOP = 4
CMD_ACK = 5
CMD_ACK_ALARM = 6
CMD_REACTION = 7
CMD_DECIDE = 8
CMD_RESOLVED = 9
CMD_OVERDOSE = 10
CMD_FLUSH = 11
CMD_REMOVE_BAG = 12
CMD_CLEAR_FAULT = 13
CMD_CYCLE_DECISION = 14
CMD_UPDATE_PATIENT = 15
CMD_END_THERAPY = 16

COMMANDS = {
    CMD_SETUP: ("setup", kernel.setup, 5),
    CMD_BAG: ("bag", kernel.bag, 9),
    CMD_START: ("start", kernel.start, 0),
    CMD_STOP: ("stop", kernel.stop, 1),
    CMD_ACK: ("ack", kernel.ack, 1),
    CMD_ACK_ALARM: ("ack_alarm", kernel.ack_alarm, 1),
    CMD_REACTION: ("reaction", kernel.reaction, 3),
    CMD_DECIDE: ("decide", kernel.decide, 1),
    CMD_RESOLVED: ("resolved", kernel.resolved, 1),
    CMD_OVERDOSE: ("overdose", kernel.overdose, 0),
    CMD_FLUSH: ("flush", kernel.flush, 0),
    CMD_REMOVE_BAG: ("remove_bag", kernel.remove_bag, 0),
    CMD_CLEAR_FAULT: ("clear_fault", kernel.clear_fault, 0),
    CMD_CYCLE_DECISION: ("cycle_decision", kernel.cycle_decision, 1),
    CMD_UPDATE_PATIENT: ("update_patient", kernel.update_patient, 2),
    CMD_END_THERAPY: ("end_therapy", kernel.end_therapy, 0),
}
COMMAND_IDS = {}
for _cid in COMMANDS:
    COMMAND_IDS[COMMANDS[_cid][0]] = _cid


class Controller:
    def __init__(self, storage, clock, motor, sensors=None):
        self.s = kernel.State()
        # line sensors: sensors.line_present() is True while an occlusion, air in line or door
        # condition exists (a board without them: never)
        self.sensors = sensors
        self.journal = journal.Journal(storage)
        self.clock = clock
        self.motor = motor
        self.last_ms = clock.ms()
        self.pending_ms = 0
        self.persist = True         # False after a corrupt or incompatible record: keep its bytes
        self.load_result = journal.LOAD_FRESH
        self.listeners = []         # callables(code, a, b, time_min) for unsolicited events
        self.unsaved = False        # the state in RAM is not on the device yet (a write failed)
        self.events_overflow = 0    # events dropped because the pending queue was full
        self.carry_ms = 0           # stopped time before a START, counted again at the next stop
        self._undo = kernel.State() # the state before a command, restored if it cannot be written
        # events of the current step, logged after its state is on the device; preallocated:
        # queuing an event allocates nothing
        self._ev_code = [0] * MAX_PENDING_EVENTS
        self._ev_a = [0] * MAX_PENDING_EVENTS
        self._ev_b = [0] * MAX_PENDING_EVENTS
        self._ev_time = [0] * MAX_PENDING_EVENTS     # kernel minute of each event
        self._ev_n = 0

    # ---------------------------------------------------------------- start-up
    def boot(self, outage_min=-1):
        """Restore the record, then tell the kernel how long power was off (-1: unknown).
        EV_BOOT comes first, then the events the power-up caused (stop, alarms)."""
        self.load_result = self.journal.load(self.s)
        self._event(journal.EV_BOOT, self.load_result, outage_min)
        if self.load_result == journal.LOAD_CORRUPT or self.load_result == journal.LOAD_INCOMPATIBLE:
            # never trust it, never overwrite it: start stopped, with an alarm. A record of a
            # layout this firmware cannot read is another firmware's therapy (maybe a locked
            # patient's): nothing is written until the right firmware is flashed
            self.s = kernel.State()
            kernel.fault(self.s)
            self.persist = False
            self._event(journal.EV_CORRUPT, 1 if self.load_result == journal.LOAD_CORRUPT else 4, 0)
        elif self.load_result == journal.LOAD_OK:
            before = self._snapshot()
            replay = self._replay_copy()
            kernel.power_up(self.s, outage_min)
            if self._line_present():
                self.s.alarm = self.s.alarm | kernel.AL_LINE    # the condition outlasted the outage
            self._after(before, _power_up_replay(outage_min) if replay else None)
        self._apply()
        self.last_ms = self.clock.ms()
        self.pending_ms = 0
        self.carry_ms = 0
        return self.load_result

    # ---------------------------------------------------------------- commands
    def command(self, cid, args):
        """Run one therapy command; returns the kernel status (never raises on bad input)."""
        entry = COMMANDS.get(cid)
        if entry is None:
            return kernel.E_ARG
        name, fn, arity = entry
        if len(args) != arity:
            return kernel.E_ARG
        for a in args:
            if not isinstance(a, int) or isinstance(a, bool):
                return kernel.E_ARG
        if cid == CMD_SETUP and self.persist:
            refused = self._ended_before(args[0])
            if refused != kernel.OK:
                self.note(journal.EV_COMMAND, cid, refused)     # nothing changed: logged now
                return refused
        refused = self._board_refusal(cid)
        if refused != kernel.OK:
            self.note(journal.EV_COMMAND, cid, refused)     # nothing changed: logged now
            return refused
        if cid == CMD_CLEAR_FAULT and not self.persist:
            if self.load_result == journal.LOAD_INCOMPATIBLE:
                return kernel.E_FAULT   # another firmware's record: never replaced from here
            self.persist = True     # the operator has seen the corrupt record; start a new one
        before = self._snapshot()
        was_running = self.s.mode == kernel.MODE_RUNNING
        booked = self.s.booked_min
        _copy_state(self.s, self._undo)
        mark = self._ev_n
        if cid == CMD_END_THERAPY and self.persist and self._end_allowed():
            # the old record is kept readable: archived before the kernel clears it
            if not self.journal.archive(self.s):
                self._event(journal.EV_COMMAND, cid, kernel.E_FAULT)
                self._latch_fault(FAULT_RECORD)
                self._apply()
                return kernel.E_FAULT
            self._event(journal.EV_THERAPY_END, self.s.patient_id, self.s.course_ng)
        status = fn(self.s, *args)  # type: ignore[operator]
        if status == kernel.OK and self._line_present():
            # LINE stays while its condition does: an ACK_ALARM, or a new patient after
            # END_THERAPY, does not clear it (a refused command changes nothing)
            self.s.alarm = self.s.alarm | kernel.AL_LINE
        self._event(journal.EV_COMMAND, cid, status)
        self._log_answer(cid, args, status)
        self._after(before)
        if self.persist and not self.journal.save(self.s):
            # not on the device: not applied, not acknowledged; the fault is latched instead
            _copy_state(self._undo, self.s)
            self._ev_n = mark
            self._event(journal.EV_COMMAND, cid, kernel.E_FAULT)
            self._latch_fault(FAULT_RECORD)     # its stop is logged as every stop is
            self._apply()
            return kernel.E_FAULT
        self._apply(saved=True)
        if cid == CMD_START and status == kernel.OK and not was_running and self.s.booked_min != booked:
            # START booked its first minute (kernel.start): the minute grid restarts here, so
            # each booked minute is a minute the motor runs; the stopped part of the minute
            # before START is carried and counted again at the next stop. (A START within a
            # minute already booked resumes it: the grid stays.)
            now = self.clock.ms()
            gap_ms = self.clock.diff(now, self.last_ms)
            self.carry_ms = self.pending_ms + (gap_ms if 0 <= gap_ms <= MAX_GAP_MS else 0)
            self.pending_ms = 0
            self.last_ms = now
        return status

    def _ended_before(self, patient_id):
        """SETUP of a patient whose therapy was ended on this board (the newest archived record of
        that patient, of the last journal.ARCHIVE_SLOTS): refused while what that record says
        still holds. Locked is permanent (L2.4-*: E_LOCKED); an open Table 4 hold or a pending
        decision is never forgotten by ending and starting again (E_WITHHOLD, E_DECISION); the
        12 hours after an overdose run on (EXT-overdose-12h). The kernel's clock runs on across
        patients, so the overdose time compares."""
        old = self._undo                    # free until the command copies the state into it
        count = self.journal.archive_count()
        back = 0
        while back < journal.ARCHIVE_SLOTS:
            if self.journal.archived(back, old, count) and old.patient_id == patient_id:
                if old.locked == 1:
                    return kernel.E_LOCKED
                if kernel._holding(old):
                    return kernel.E_WITHHOLD
                if old.decision_pending == 1:
                    return kernel.E_DECISION
                if old.overdose_min >= 0 and self.s.now_min - old.overdose_min < kernel.OVERDOSE_WAIT_MIN:
                    return kernel.E_OVERDOSE_12H
                return kernel.OK
            back += 1
        return kernel.OK

    def _end_allowed(self):
        """END_THERAPY would be accepted (kernel.end_therapy run on a copy)."""
        _copy_state(self.s, self._undo)
        allowed = kernel.end_therapy(self._undo) == kernel.OK
        _copy_state(self.s, self._undo)     # the undo copy is the state before the command
        return allowed

    def _log_answer(self, cid, args, status):
        """What a clinician entered, beyond the command id: the reaction with its grade and
        scale, each decision, a new weight (old and new values)."""
        if status != kernel.OK and status != kernel.E_LOCKED:
            return
        if cid == CMD_REACTION:
            self._event(journal.EV_REACTION, args[0] * 10 + args[1], args[2])
        elif cid == CMD_DECIDE:
            self._event(journal.EV_DECISION, DECISION_OTHER4, args[0])
        elif cid == CMD_CYCLE_DECISION:
            self._event(journal.EV_DECISION, DECISION_CYCLE, args[0])
        elif cid == CMD_UPDATE_PATIENT:
            self._event(journal.EV_PATIENT, self._undo.weight_g, self.s.weight_g)
            self._event(journal.EV_PATIENT_BSA, self._undo.bsa_cm2, self.s.bsa_cm2)
            if self._undo.bag_loaded == 1 and self.s.bag_loaded == 0:
                self._event(journal.EV_BAG_REFUSED, self._undo.bag_id, 0)    # above the new cap
        elif cid == CMD_RESOLVED:
            self._event(journal.EV_RESOLVED, args[0], status)

    # ---------------------------------------------------------------- time
    def poll(self):
        """Call on every pass of the board loop. Runs one kernel tick per elapsed minute of the
        clock; returns the number of ticks run, or -1 after a clock fault.

        - A gap of 0 to MAX_GAP_MS since the last poll is real time: a late tick's whole
          minutes are caught up at once, each through kernel.tick and its per-minute cap guard
          (L2-dose-28), so a late tick never books more than the cap. The motor ran at the
          bag's constant rate meanwhile: this books what ran, it adds no drug.
        - A gap below 0 (the clock ran backwards, even by 1 ms) or above MAX_GAP_MS (a forward
          jump) is not trusted as elapsed time: clock_fault. None of it is counted; the open
          interruption counts as 4 h or more instead (L2-reinit-4h).
        - The part of a minute measured before a fault is real elapsed time: pending_ms keeps it.
          It is RAM, lost at a reboot: an outage given to boot() must be measured from the last
          counted minute, rounded up (docs/verifier.md, "Clock properties"); -1 is always safe.
        - The tick counter's wrap-around is clock.diff's (time.ticks_diff): exact for gaps
          below half its period (2**29 ms, 6.2 days on a board). A larger stall could alias to
          a small gap; a board's watchdog (hal.Watchdog, fed every loop pass) reboots it long
          before, and the reboot's outage is unknown.
        """
        now = self.clock.ms()
        gap_ms = self.clock.diff(now, self.last_ms)
        self.last_ms = now
        if self.unsaved and self.persist:
            self._apply()               # storage failed earlier: write the latched state now
        if gap_ms < 0 or gap_ms > MAX_GAP_MS:
            self.clock_fault(gap_ms)
            return -1
        self.pending_ms += gap_ms
        n = 0
        while self.pending_ms >= MS_PER_MIN and n < MAX_TICKS_PER_POLL:
            self.pending_ms -= MS_PER_MIN
            self.tick()
            n += 1
        return n

    def tick(self):
        """One minute of therapy time: decide, record, then move the motor."""
        before = self._snapshot()
        replay = self._replay_copy()
        kernel.tick(self.s)
        self._after(before, kernel.tick if replay else None)
        self._apply()

    def sensor_alarm(self, bits):
        """A board sensor (occlusion, air in line, door, battery): stop, raise the bits.
        Recorded before the motor is touched, like every other step."""
        before = self._snapshot()
        kernel.stop(self.s, kernel.STOP_ALARM)  # E_STATE when not running: the alarm still counts
        self.s.alarm = self.s.alarm | (bits & 255)
        self._after(before)
        self._apply()

    def clock_fault(self, gap_ms=0):
        """The clock cannot be trusted (see poll): kernel.clock_fault stops the motor, latches
        the fault, makes the interruption unknown and discards the bag (L2.6-bag-*: its
        room-temperature time is unknown). A repeat while latched with nothing left to change
        (E_FAULT) is not recorded again: a jittering clock must neither wash the therapy
        events out of the journal's ring nor wear the flash."""
        before = self._snapshot()
        replay = self._replay_copy()
        if kernel.clock_fault(self.s) != kernel.OK:
            self.motor.set_rate(0)          # already latched: the kernel's flow is 0
            return
        self._after(before, kernel.clock_fault if replay else None)
        gap_s = max(-GAP_LOG_MAX_S, min(GAP_LOG_MAX_S, gap_ms // 1000))
        self._event(journal.EV_FAULT, FAULT_CLOCK, gap_s)
        self._apply()

    # ---------------------------------------------------------------- internals
    def _apply(self, saved=False):
        """Write-ahead: persist the state (unless `saved`: the caller just wrote it), then log
        its events, then drive the motor (a corrupt or incompatible record is kept untouched:
        nothing is written). A failed write stops the motor and latches the fault; the faulted
        state and the events wait in RAM, and poll() writes them once storage works."""
        s = self.s
        recorded = True
        if self.persist and not saved:
            recorded = self.journal.save(s)
            if not recorded:
                if s.fault == 0 or s.mode == kernel.MODE_RUNNING:
                    self._latch_fault(FAULT_RECORD)
                recorded = self.journal.save(s)     # one more try, now with the fault latched
        self.unsaved = not recorded
        if recorded:
            self._flush_events()
        if not self.motor.set_rate(s.motor_ul_per_h):
            if s.mode == kernel.MODE_RUNNING:
                self._latch_fault(FAULT_MOTOR)
                if self.persist:
                    self.unsaved = not self.journal.save(s)
                if not self.unsaved:
                    self._flush_events()        # the fault's state is on the device: log it
            self.motor.set_rate(0)
        if s.mode != kernel.MODE_RUNNING and self.carry_ms:
            self.pending_ms += self.carry_ms    # the stopped part of START's minute counts again
            self.carry_ms = 0

    def _latch_fault(self, kind):
        """kernel.fault, logged as every step is (its STOP, ALARM and REINIT), then EV_FAULT."""
        before = self._snapshot()
        kernel.fault(self.s)
        self._after(before)
        self._event(journal.EV_FAULT, kind, 0)

    def _snapshot(self):
        s = self.s
        return (s.mode, s.alarm, s.locked, s.cycle, s.phase, s.bag_loaded, s.int_start_min,
                s.int_reason, s.reinit_needed)

    def _replay_copy(self):
        """Before a step that can end the loaded bag while its alarm bit is already set (a bag
        ended earlier and no one acknowledged it): the state, in the scratch copy, with both
        bag bits cleared. If the bag ends, _after runs the same kernel step on the copy to see
        which bit it raises: every bag end is an event, and no rule is written twice."""
        s = self.s
        if s.bag_loaded == 0 or s.alarm & BAG_BITS == 0:
            return False
        _copy_state(s, self._undo)
        self._undo.alarm = s.alarm & (255 - BAG_BITS)
        return True

    def _after(self, before, replay=None):
        """Log what changed: every stop, resume, bag end, alarm, lock and cycle change.
        replay: the kernel step just run, when _replay_copy saved the state before it."""
        s = self.s
        mode, alarm, locked, cycle, phase, bag_loaded, int_start, int_reason, reinit = before
        if mode == kernel.MODE_RUNNING and s.mode != kernel.MODE_RUNNING:
            # a stop opens an interruption with its reason; the end of the cycle's 28th day opens
            # none (int_start_min -1) and is logged as STOP_CYCLE_END, never as reason 0
            self._event(journal.EV_STOP, s.int_reason if s.int_start_min >= 0 else kernel.STOP_CYCLE_END,
                        s.int_start_min)
        if mode == kernel.MODE_STOPPED and s.mode == kernel.MODE_RUNNING and int_start >= 0:
            self._event(journal.EV_RESUME, s.now_min - int_start, int_reason)
        # every bag end is an event, whatever the alarm bits already say: the stop's reason tells a
        # running bag's end, the alarm bit a stopped one's
        ended_running = mode == kernel.MODE_RUNNING and s.mode != kernel.MODE_RUNNING
        if bag_loaded == 1 and s.bag_loaded == 0:
            rose = s.alarm & (255 - alarm)
            if replay is not None and rose & BAG_BITS == 0:
                replay(self._undo)          # the bit was set already: which one would rise
                rose = self._undo.alarm & BAG_BITS
            if (ended_running and s.int_reason == kernel.STOP_BAG_END) or rose & kernel.AL_BAG_END:
                self._event(journal.EV_BAG_END, 0, 0)
            elif (ended_running and s.int_reason == kernel.STOP_BAG_EXPIRED) or rose & kernel.AL_BAG_EXPIRED:
                self._event(journal.EV_BAG_EXPIRED, 0, 0)
        if s.alarm != alarm:
            self._event(journal.EV_ALARM, s.alarm, alarm)
        if s.locked and not locked:
            self._event(journal.EV_LOCK, s.lock_reason, 0)
        if s.cycle != cycle or s.phase != phase:
            self._event(journal.EV_CYCLE, s.cycle, s.phase)
        if s.reinit_needed and not reinit:
            self._event(journal.EV_REINIT, s.int_start_min, 0)

    def note(self, code, a, b):
        """Log an event of the board loop (a refused frame, a corrupt counter record). It
        changes no state, so it is logged now. While storage fails it is only counted
        (events_overflow): the queue keeps its room for the events of the state in RAM."""
        if self.unsaved:
            self.events_overflow += 1
            return
        self._event(code, a, b)
        self._flush_events()

    def _event(self, code, a, b):
        """Queue an event of this step; it is logged once its state is on the device."""
        n = self._ev_n
        if n >= MAX_PENDING_EVENTS:
            self.events_overflow += 1
            return
        self._ev_code[n] = code
        self._ev_a[n] = a
        self._ev_b[n] = b
        self._ev_time[n] = self.s.now_min
        self._ev_n = n + 1

    def _flush_events(self):
        """Log the queued events (the state they describe is on the device) and tell the
        listeners. A log write that fails keeps the rest queued for the next try."""
        i = 0
        n = self._ev_n
        while i < n:
            code = self._ev_code[i]
            a = self._ev_a[i]
            b = self._ev_b[i]
            if self.persist and not self.journal.log(self._ev_time[i], code, a, b):
                break
            for fn in self.listeners:
                fn(code, a, b, self._ev_time[i])
            i += 1
        j = 0
        while i < n:                    # keep what could not be written, in order
            self._ev_code[j] = self._ev_code[i]
            self._ev_a[j] = self._ev_a[i]
            self._ev_b[j] = self._ev_b[i]
            self._ev_time[j] = self._ev_time[i]
            i += 1
            j += 1
        self._ev_n = j

    # ---------------------------------------------------------------- reading
    def status(self):
        s = self.s
        start = self.start_status()
        return {
            "mode": s.mode, "now_min": s.now_min, "motor_ul_per_h": s.motor_ul_per_h,
            "cap_ng_per_day": s.cap_ng_per_day, "cap_full_ng_per_day": s.cap_full_ng_per_day,
            "cap_low_ng_per_day": s.cap_low_ng_per_day, "indication": s.indication,
            "cycle": s.cycle, "phase": s.phase, "cycle_run_min": s.cycle_run_min,
            "free_min": s.free_min, "bag_loaded": s.bag_loaded, "bag_ng_per_day": s.bag_ng_per_day,
            "bag_ul_per_h": s.bag_ul_per_h, "bag_run_min": s.bag_run_min, "bag_room_min": s.bag_room_min,
            "bag_ng": s.bag_ng, "bag_ul": s.bag_ul, "day_ng": s.day_ng, "cycle_ng": s.cycle_ng,
            "course_ng": s.course_ng, "course_ul": s.course_ul, "alarm": s.alarm, "fault": s.fault,
            "locked": s.locked, "lock_reason": s.lock_reason, "reinit_needed": s.reinit_needed,
            # the premedication START asks for: a cycle start or re-initiation, or the step dose
            "need_premed": 1 if s.need_premed == 1 or start == kernel.E_STEP_PREMED else 0,
            "need_supervision": s.need_supervision,
            "int_start_min": s.int_start_min, "int_reason": s.int_reason, "rx_crs": s.rx_crs,
            "rx_icans": s.rx_icans, "rx_neuro": s.rx_neuro, "rx_seizure": s.rx_seizure,
            "rx_other": s.rx_other, "decision_pending": s.decision_pending,
            "overdose_min": s.overdose_min, "step_run_min": s.step_run_min,
            "low_left_min": s.low_left_min, "hospitalization": hospitalization_day(s),
            "events": self.journal.event_seq, "bag_id": s.bag_id, "last_bag_id": s.last_bag_id,
            "start_status": start, "cycle_ask": s.cycle_ask, "max_cycles": s.max_cycles,
            "weight_g": s.weight_g, "bsa_cm2": s.bsa_cm2,
        }

    def start_status(self):
        """What START would answer now (OK, or the refusal and its clause: E_REINIT,
        E_STEP_PREMED, E_DECISION, E_WITHHOLD, E_LINE_ALARM, ...): the board's own check, then
        kernel.start run on a copy of the state, so a host never has to guess why START will
        fail, and no rule is written twice."""
        _copy_state(self.s, self._undo)
        status = kernel.start(self._undo)
        if status == kernel.OK and self._line_present():
            return E_LINE_ALARM     # the board's own: only where the kernel itself would start
        return status

    def _line_present(self):
        return self.sensors is not None and self.sensors.line_present()

    def _board_refusal(self, cid):
        """What the board refuses before the kernel sees a command: conditions of the pump
        itself, which only the board can see (EXT-pump; IEC 60601-2-24: an alarm condition that
        still exists is not cleared by acknowledging it).
        - START while a line condition (occlusion, air in line, door) exists: E_LINE_ALARM.
        - CLEAR_FAULT while the motor does not answer (it must take rate 0): E_FAULT, the fault
          stays latched."""
        if cid == CMD_START and self._line_present() and self.start_status() == E_LINE_ALARM:
            return E_LINE_ALARM     # the kernel's own refusal (locked, no bag, ...) tells more
        if cid == CMD_CLEAR_FAULT and self.s.fault == 1 and not self.motor.set_rate(0):
            return kernel.E_FAULT
        return kernel.OK


def _power_up_replay(outage_min):
    return lambda s: kernel.power_up(s, outage_min)


def _copy_state(src, dst):
    """Every kernel field of src into dst (a command's undo; allocates nothing)."""
    for name in journal.FIELDS:
        setattr(dst, name, getattr(src, name))


def hospitalization_day(s):
    """1 while the label recommends hospitalisation (L2-hosp): R/R cycle 1 days 1-9,
    other indications cycle 1 days 1-3; cycle 2 days 1-2."""
    if s.phase != kernel.PHASE_INFUSION:
        return 0
    day = s.cycle_run_min // kernel.MIN_PER_DAY + 1
    if s.cycle == 1:
        return 1 if day <= (9 if s.indication == kernel.IND_RR else 3) else 0
    if s.cycle == 2:
        return 1 if day <= 2 else 0
    return 0
