"""The simulated board: the firmware's Board over a simulated plant, plus simulation-only commands.

SIMULATION ONLY. A production build must not contain this file (DESIGN.md: "test-only commands
exist only in simulation builds"); nothing in firmware/ imports it.

Plant: SimClock (time moves only by ADVANCE, so a bench is deterministic), SimMotor, and a
MemStorage that survives power cuts (a cut may even land part-way through a record write).
Commands (docs/protocol.md, "Simulation commands"):
  ADVANCE [minutes]      fast-forward: one minute of clock, then Controller.poll(), n times
  FAULT   [kind, value]  line alarms, low battery, power cuts, motor failure
  RESET   []             erase the record and reboot: a fresh pump for the next scenario
"""
from . import auth, journal, kernel, main, protocol as P, pump, simhal

# simulation commands (docs/protocol.md, "Simulation commands"); a production build has none
CMD_ADVANCE = 48    # [minutes] -> minutes done, now_min
CMD_FAULT = 49      # [kind, value]
CMD_RESET = 50      # [] erase the record and reboot the simulated board
CMD_HEAP = 51       # [] -> heap bytes allocated and free after a collection (soak runs)

# fault kinds of CMD_FAULT
FAULT_OCCLUSION = 1
FAULT_AIR = 2
FAULT_DOOR = 3
FAULT_LOW_BATTERY = 4
FAULT_POWER_CUT = 5         # value: outage in minutes, -1 unknown
FAULT_POWER_CUT_WRITE = 6   # value: bytes into the coming record writes where power fails
FAULT_MOTOR = 7             # value: 1 the motor stops answering, 0 it answers again

MAX_ADVANCE_MIN = 10080         # per ADVANCE request (7 days); the host splits longer ones
# Simulation test keys (docs/security.md): sha256 of this prefix + the role's name. Public by
# design, so any bench can drive a simulated board; a production board has only provisioned keys.
SIM_KEY_PREFIX = b"blinpump simulation key: "
MS_PER_MIN = 60000

# FAULT kind -> alarm bit: AL_LINE for occlusion, air and door (the board's line sensors);
# the kernel has no battery bit, so low battery raises AL_POWER (a power problem).
_ALARM_OF = {
    FAULT_OCCLUSION: kernel.AL_LINE,
    FAULT_AIR: kernel.AL_LINE,
    FAULT_DOOR: kernel.AL_LINE,
    FAULT_LOW_BATTERY: kernel.AL_POWER,
}


def sim_keys():
    """{role: key} of the simulation test keys."""
    import hashlib
    keys = {}
    for role in range(1, auth.NROLES + 1):
        keys[role] = hashlib.sha256(SIM_KEY_PREFIX + auth.ROLE_NAMES[role].encode()).digest()
    return keys


class Sim:
    def __init__(self, transport=None, keys=None):
        self.storage = simhal.MemStorage(journal.TOTAL_BYTES)
        self.counter_storage = simhal.MemStorage(auth.TOTAL_BYTES)
        self.keys = keys if keys is not None else sim_keys()
        self.clock = simhal.SimClock()
        self.motor = simhal.SimMotor()
        self.sensors = simhal.SimSensors()
        self.power_cuts = 0
        self.board = main.Board(transport, self._controller(), P.BUILD_SIM, self._auth())
        b = self.board
        b.max_advance_min = MAX_ADVANCE_MIN
        b.on_exception = self._on_exception
        b.extra[CMD_ADVANCE] = (1, self.advance)
        b.extra[CMD_FAULT] = (2, self.fault)
        b.extra[CMD_RESET] = (0, self.reset)
        b.extra[CMD_HEAP] = (0, self.heap)

    def _controller(self):
        return pump.Controller(self.storage, self.clock, self.motor, self.sensors)

    def _auth(self):
        """Keys as provisioned on the board; counters restored from their record at boot."""
        return auth.Auth(self.keys, self.counter_storage)

    def boot(self, outage_min=-1):
        return self.board.boot(outage_min)

    # ------------------------------------------------------------ commands
    def advance(self, args):
        minutes = args[0]
        if minutes < 0 or minutes > MAX_ADVANCE_MIN:
            return [kernel.E_ARG, 0, self.board.controller.s.now_min]
        c = self.board.controller
        for _ in range(minutes):
            self.clock.advance(MS_PER_MIN)
            c.poll()                # the board's own path: one tick per elapsed minute
        return [kernel.OK, minutes, c.s.now_min]

    def fault(self, args):
        kind, value = args
        if kind in _ALARM_OF:
            # value 0: the condition happens and is gone at once; 1: it begins and stays (no
            # START until it is cleared); 2: it is cleared (no alarm). Low battery is never kept.
            if not 0 <= value <= 2:
                return [kernel.E_ARG]
            sensor = 1 << kind
            if value == 2:
                self.sensors.present = self.sensors.present & ~sensor
                return [kernel.OK]
            if value == 1 and _ALARM_OF[kind] == kernel.AL_LINE:
                self.sensors.present = self.sensors.present | sensor
            self.line_alarm(_ALARM_OF[kind])
        elif kind == FAULT_POWER_CUT:
            if value < -1:
                return [kernel.E_ARG]
            self.power_cut(value)
        elif kind == FAULT_POWER_CUT_WRITE:
            if value < 0:
                return [kernel.E_ARG]
            self.storage.cut_after = value      # simhal.PowerCut is raised inside that write
        elif kind == FAULT_MOTOR:
            self.motor.fail = value == 1
        else:
            return [kernel.E_ARG]
        return [kernel.OK]

    def heap(self, args):
        """Bytes of heap in use and free after a full collection (MicroPython's gc; on
        CPython, where there is no such heap, both are -1)."""
        import gc
        gc.collect()
        try:
            return [kernel.OK, gc.mem_alloc(), gc.mem_free()]
        except AttributeError:
            return [kernel.OK, -1, -1]

    def reset(self, args):
        self.storage = simhal.MemStorage(journal.TOTAL_BYTES)     # erased: a fresh pump
        self.counter_storage = simhal.MemStorage(auth.TOTAL_BYTES)
        self.motor.fail = False
        self.sensors.present = 0
        self.power_cut(-1)
        return [kernel.OK]

    # ------------------------------------------------------------ the plant
    def line_alarm(self, bit):
        """A sensor alarm: stop the motor (kernel.stop, STOP_ALARM) and raise the alarm bit,
        recorded before the motor is touched, like every other step of the controller."""
        self.board.controller.sensor_alarm(bit)

    def power_cut(self, outage_min):
        """Power off and on: the motor stops, RAM is lost, the controller restores its record."""
        self.power_cuts += 1
        self.motor.ul_per_h = 0
        self.clock.advance(max(outage_min, 0) * MS_PER_MIN)
        self.board.reset_link()
        self.board.attach(self._controller())
        self.board.auth = self._auth()          # RAM is lost: counters come back from the record
        self.board.boot(outage_min)

    def _on_exception(self, exc):
        if isinstance(exc, simhal.PowerCut):
            self.power_cut(0)       # a bench power blip: known, zero-length outage
            return True
        return False


def make_board(transport=None, keys=None):
    """A booted simulated board (its boot banner is waiting in board.out); keys default to
    the simulation test keys."""
    sim = Sim(transport, keys)
    sim.boot(-1)
    return sim


def run_console(keys_hex="", keys=None, maintenance=False, ready=True):
    """The simulated board on this interpreter's stdin/stdout (`blinpump sim --runtime unix`:
    the unix port on a pseudo-terminal; or a board's console, see start): link bytes only on
    stdout; "simboard: ready" on stderr once the boot banner is out (ready); returns when stdin
    ends. keys: {role: key} (or keys_hex, a keys.bin in hex), default the simulation keys;
    maintenance: whether MAINTENANCE is served (on a board: main.write_maintenance_flag, then
    main.reset_board), default not."""
    import binascii
    import sys
    if keys is None and keys_hex:
        keys = auth.decode_keys(binascii.unhexlify(keys_hex))
    sim = make_board(main.ConsoleTransport(), keys)
    if maintenance:
        sim.board.maintenance = main.write_maintenance_flag
        sim.board.reset_board = main.reset_board
    sim.board.transport.write(sim.board._take())
    if ready:
        sys.stderr.write("simboard: ready\n")
    sim.board.run()


def start():
    """Boot entry of a simulation build on a board (the root main.py `blinpump flash --with-sim`
    writes): the simulated pump on the console, with the provisioned keys if there are any (else
    the simulation keys), unless the board is in maintenance (main.in_maintenance)."""
    if main.in_maintenance():
        print("blinpump: maintenance: the simulated pump is not started (remove %s and reset)"
              % main.MAINTENANCE_PATH)
        return False
    state, keys = main.read_keys()
    run_console(keys=keys if state == main.KEYS_OK else None, maintenance=True, ready=False)
    return True


# hex wrappers for the MicroPython bridge (hil/mpy_board.mjs): no byte is ever translated
_bridged = []  # type: list[Sim]


def bridge_start(keys_hex=""):
    """keys_hex: the bytes of a keys.bin in hex, or "" for the simulation test keys."""
    import binascii
    sim = make_board(None, auth.decode_keys(binascii.unhexlify(keys_hex)) if keys_hex else None)
    _bridged[:] = [sim]
    return binascii.hexlify(sim.board._take()).decode()


def bridge_feed(hex_in):
    import binascii
    board = _bridged[0].board
    out = board.feed(binascii.unhexlify(hex_in)) if hex_in else b""
    return binascii.hexlify(out + board.poll()).decode()
