"""The board loop: bytes from the serial line -> protocol -> Controller -> replies and events.

`Board(transport, controller)` is the whole loop as an object, so it runs the same on a board
(`run()` over a machine.UART), under a host bridge (`feed(bytes) -> bytes` and `poll()`:
hil/sim.py on CPython, hil/mpy_board.mjs on MicroPython), and in tests.

Rules of the link (docs/protocol.md):
- only a frame whose CRC matches is acted on; a bad or partial frame changes no therapy
  (L2.5-errors) and is answered with a NAK;
- one reply per request; the reply to the last request of each role (and one for plain
  frames) is kept and re-sent for a duplicate, so a retried command is never applied twice,
  even when another host (another role) spoke in between;
- therapy commands need a session (a HELLO since this boot); after a reboot a retried command
  is refused (E_OUT_OF_STATE) instead of being applied a second time;
- every command but HELLO needs an authenticated frame from a role allowed to send it
  (firmware/auth.py, docs/security.md); a refusal changes nothing and is logged (EV_AUTH);
- journal events (stop, alarm, bag end, lock, cycle...) go out unsolicited as EVENT frames.
"""
import struct

from . import auth, kernel, journal, protocol as P, pump

FIRMWARE_VERSION = 400          # major * 10000 + minor * 100 + patch: 0.4.0 (record format 2; MAINTENANCE)
MAX_QUEUED_EVENTS = 32          # per feed()/poll(); the rest stay in the journal (CMD_EVENTS)
# board wiring (set per board): the pump's line, stepper pins, steps, maintenance pin
LINK = "console"                # the USB serial the REPL uses (one cable); or a UART number
UART_BAUD = 115200
STEP_PIN = 2
ENABLE_PIN = 3
UL_PER_STEP_X1000 = 50
RECORD_PATH = "journal.bin"
KEYS_PATH = "keys.bin"          # provisioned over USB (docs/security.md), never over the link
KEYS_NEW_PATH = "keys.new"      # provisioning copies here, then renames over keys.bin
COUNTERS_PATH = "auth.bin"
MAINTENANCE_PATH = "maintenance"    # on the board's flash: boot leaves the pump off (in_maintenance)
MAINTENANCE_PIN = -1            # a pin that, held low at reset, does the same (-1: none wired)
MAX_AUTH_EVENTS_PER_MIN = 8     # refusals logged per kernel minute; the rest are only counted


def kernel_hash():
    """(hash kind, sha256 digest) of the kernel file this board imported, if it can be read."""
    try:
        import hashlib
        path = kernel.__file__
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while True:
                chunk = f.read(512)
                if not chunk:
                    break
                h.update(chunk)
        return (P.HASH_SOURCE if path.endswith(".py") else P.HASH_MPY), h.digest()
    except Exception:       # no hashlib, no __file__, frozen module: say so
        return P.HASH_NONE, bytes(32)


class Board:
    def __init__(self, transport, controller, build_kind=P.BUILD_PRODUCTION, authority=None):
        self.transport = transport
        self.build_kind = build_kind
        # no keys: every command but HELLO is refused (fail closed)
        self.auth = authority if authority is not None else auth.Auth()
        self.decoder = P.Decoder()
        self.out = bytearray()
        self.extra = {}             # cid -> (arity, handler(args) -> [status, ...]); sim commands
        self.max_advance_min = 0
        self.on_exception = None    # fn(exc) -> True if handled (the simulator's power cuts)
        self.hash_kind, self.hash_digest = kernel_hash()
        self.events_dropped = 0
        self._queued = 0
        # fn() that puts the board into maintenance and resets it (main.enter_maintenance); None:
        # this board has none (a simulated board in a host process), MAINTENANCE is unknown
        self.maintenance = None
        self.maintenance_pending = False
        self.controller = controller
        controller.listeners.append(self._on_event)
        # the role and counter the frame being answered proved (set per frame, in _frame: a
        # simulated power cut inside a command reboots the link, and its reply is still signed)
        self._proved_role = 0
        self._proved_counter = 0
        self._mac_reason = 0        # why the frame's MAC did not prove a role (R_NO_KEY, R_BAD_MAC)
        self._accepted_role = 0     # the role whose counter the frame consumed: its cache slot
        self.reset_link()

    def attach(self, controller):
        """Serve another controller (a reboot builds a new one over the same record)."""
        # fn() that puts the board into maintenance and resets it (main.enter_maintenance); None:
        # this board has none (a simulated board in a host process), MAINTENANCE is unknown
        self.maintenance = None
        self.maintenance_pending = False
        self.controller = controller
        controller.listeners.append(self._on_event)

    def reset_link(self):
        """What a reboot forgets: the session, the reply caches, a half-received frame."""
        self.decoder.reset()
        self.session = False
        # one reply cache per role (index 0: plain frames): a host's retry is recognised even
        # when another host, with another role, sent a request in between (docs/security.md)
        self.cache_seq = [-1] * (auth.NROLES + 1)
        self.cache_crc = [0] * (auth.NROLES + 1)
        self.cache_reply = [b""] * (auth.NROLES + 1)
        self._event_role = 0        # events are signed with the role last accepted (0: plain)
        # counted since boot, like the authority's `rejected`: a reboot starts both again
        self.auth_unlogged = 0      # refusals over MAX_AUTH_EVENTS_PER_MIN, counted only
        self._auth_min = -1
        self._auth_logged = 0

    def _cache_slot(self, ftype, n):
        """The reply-cache slot where a retry of the frame in the decoder is looked up: the role
        its trailer claims (an authenticated frame), else 0. A claim is not trusted for looking
        up (a cached reply goes only to the very same frame, SEQ and CRC, which changes
        nothing), and a reply is cached in a role's slot only once the frame consumed the
        role's counter (_authorise): neither a forged frame nor a replayed one can evict a
        host's cached reply."""
        if ftype != P.T_AUTH or n < auth.TRAILER_INTS:
            return 0
        role = struct.unpack_from("<i", self.decoder.buf, P.HEADER_BYTES + 4 * (n - auth.TRAILER_INTS))[0]
        return role if 1 <= role <= auth.NROLES else 0

    def boot(self, outage_min=-1):
        """Start the controller; its EV_BOOT event is the boot banner the host waits for."""
        result = self.controller.boot(outage_min)
        if self.auth.load() == auth.LOAD_CORRUPT:
            # replay cannot be ruled out: authenticated commands are refused (R_NO_COUNTERS)
            self.controller.note(journal.EV_CORRUPT, 2, 0)
        return result

    # ------------------------------------------------------------ host bridge entry points
    def feed(self, data):
        """Bytes from the line in, bytes for the line out."""
        dec = self.decoder
        for b in data:
            r = dec.push(b)
            if r == P.FRAME:
                self._frame()
            elif r == P.BAD:
                # the frame cannot be trusted, not even its SEQ: NAK it, apply nothing
                P.encode(self.out, P.T_NAK, 0, 0, (dec.error,))
        return self._take()

    def poll(self):
        """Let the controller see the clock (one kernel tick per elapsed minute)."""
        self.controller.poll()
        return self._take()

    def _take(self):
        self._queued = 0
        if not self.out:
            return b""
        data = bytes(self.out)
        self.out = bytearray()
        return data

    # ------------------------------------------------------------ a good frame
    def _frame(self):
        dec = self.decoder
        ver, ftype, seq, cmd, n = dec.header()
        frame_crc = dec.frame_crc()
        for slot in (self._cache_slot(ftype, n), 0):
            if seq == self.cache_seq[slot] and frame_crc == self.cache_crc[slot]:
                self.out.extend(self.cache_reply[slot])     # a retry: same reply, nothing re-applied
                return
        self._proved_role = 0
        self._accepted_role = 0
        authenticated = ftype == P.T_AUTH
        if authenticated and n >= auth.TRAILER_INTS:
            self._prove_mac()       # first: every answer to a frame whose MAC holds is signed
        if n < 0 or not (ftype == P.T_REQUEST or authenticated) or (authenticated and n < auth.TRAILER_INTS):
            values = [P.E_MALFORMED]
        elif ver != P.VERSION:
            values = [P.E_VERSION, P.VERSION]
        else:
            nargs = n - auth.TRAILER_INTS if authenticated else n
            try:
                values = self._dispatch(cmd, dec.ints(nargs), authenticated)
            except Exception as exc:
                if self.on_exception is None or not self.on_exception(exc):
                    raise
                return                              # the board "rebooted": no reply, as on a board
        role = self._proved_role           # 0 unless the MAC proved the role
        if role:
            # signed with the role's key, bound to the request by its role and counter: a reply
            # cannot be forged, nor replayed for another request
            reply = P.encode(bytearray(), P.T_AUTH_REPLY, seq, cmd, values, role, self._proved_counter,
                             self._signer(role))
        else:
            reply = P.encode(bytearray(), P.T_REPLY, seq, cmd, values)
        # the role's cache slot holds only a reply to a frame that consumed its counter: a
        # refusal (a recorded frame replayed, say) never evicts the reply a host may re-ask for
        slot = self._accepted_role
        self.cache_seq[slot] = seq
        self.cache_crc[slot] = frame_crc
        self.cache_reply[slot] = reply
        self.out.extend(reply)

    def _dispatch(self, cmd, args, authenticated):
        c = self.controller
        if cmd == P.CMD_HELLO:
            if len(args) != 1:
                return [P.E_ARITY]
            return self._hello(args[0])
        if cmd == P.CMD_STATUS or cmd == P.CMD_EVENTS or cmd == P.CMD_AUTH_EVENTS or cmd == P.CMD_ARCHIVE:
            if len(args) != (0 if cmd == P.CMD_STATUS else 1):
                return [P.E_ARITY]
            refused = self._authorise(cmd, authenticated, auth.PERM_READ, False)
            if refused:
                return refused
            if cmd == P.CMD_ARCHIVE:
                return self._archive(args[0])
            if cmd != P.CMD_STATUS:
                return self._events(args[0], cmd == P.CMD_AUTH_EVENTS)
            d = c.status()
            values = [kernel.OK]
            for name in P.STATUS_FIELDS:
                values.append(d[name])
            return values
        entry = pump.COMMANDS.get(cmd)
        if entry is not None:
            if len(args) != entry[2]:
                return [P.E_ARITY]
            if not self.session:
                return [P.E_OUT_OF_STATE]
            # pharmacy orders bags; every other therapy command is clinical (docs/security.md)
            need = auth.PERM_ORDER if cmd == pump.CMD_BAG else auth.PERM_CLINICAL
            refused = self._authorise(cmd, authenticated, need, True)
            if refused:
                return refused
            return [c.command(cmd, args)]
        if cmd == P.CMD_MAINTENANCE and self.maintenance is not None:
            return self._maintenance(cmd, args, authenticated)
        entry = self.extra.get(cmd)
        if entry is not None:
            if len(args) != entry[0]:
                return [P.E_ARITY]
            if not self.session:
                return [P.E_OUT_OF_STATE]
            refused = self._authorise(cmd, authenticated, auth.PERM_SIM, True)
            if refused:
                return refused
            return entry[1](args)
        return [P.E_UNKNOWN_CMD]

    def _maintenance(self, cmd, args, authenticated):
        """MAINTENANCE (docs/protocol.md): a clinician's, never while the motor runs (an infusion
        is stopped first, by STOP, logged). Logged, answered, then the board loop hands over to
        the hook once the reply is written (run): the flag file, then a reset."""
        if len(args) != 0:
            return [P.E_ARITY]
        if not self.session:
            return [P.E_OUT_OF_STATE]
        # a board with no key at all cannot have run therapy (every command but HELLO is
        # refused there): MAINTENANCE is open to anyone, so a new board can be provisioned
        if self.auth.roles() != 0:
            refused = self._authorise(cmd, authenticated, auth.PERM_CLINICAL, True)
            if refused:
                return refused
        c = self.controller
        if c.s.mode == kernel.MODE_RUNNING:
            c.note(journal.EV_COMMAND, cmd, kernel.E_STATE)
            return [kernel.E_STATE]
        c.note(journal.EV_MAINTENANCE, self._accepted_role, 0)
        self.maintenance_pending = True
        return [kernel.OK]

    def _archive(self, back):
        """An ended therapy's record (journal archive), read into a scratch state: the undo copy
        is free between commands. E_ARG if there is none that far back."""
        c = self.controller
        scratch = c._undo
        count = c.journal.archive_count()
        if not c.journal.archived(back, scratch, count):
            return [kernel.E_ARG]
        values = [kernel.OK, count - back]
        for name in P.ARCHIVE_FIELDS:
            values.append(getattr(scratch, name))
        return values

    def _hello(self, host_version):
        status = kernel.OK
        if host_version != P.VERSION:
            status = P.E_VERSION
        else:
            self.session = True
        values = [status, P.VERSION, FIRMWARE_VERSION, self.build_kind, self.max_advance_min,
                  self.hash_kind]
        for i in range(8):
            values.append(struct.unpack_from("<i", self.hash_digest, 4 * i)[0])
        last = self.auth.counters.last
        values.extend((self.auth.roles(), last[auth.ROLE_PHARMACY], last[auth.ROLE_CLINICIAN],
                       last[auth.ROLE_BENCH], self.auth.rejected, self.auth_unlogged))
        values.append(1 if self.controller.s.mode == kernel.MODE_RUNNING else 0)   # infusing
        return values

    def _authorise(self, cmd, authenticated, need, durable):
        """None if the frame in the decoder may run `cmd`; else the refusal to reply.
        A durable command's counter is on the device before the command runs."""
        if not authenticated:
            return self._refuse(cmd, auth.R_NOT_AUTHENTICATED)
        role, counter = self._proved_role, self._proved_counter
        if not role:
            return self._refuse(cmd, self._mac_reason)
        reason = self.auth.admit(role, counter, need)
        if reason:
            return self._refuse(cmd, reason)
        if not self.auth.accept(role, counter, durable):
            return [kernel.E_FAULT]             # the counter could not be written: nothing ran
        self._accepted_role = role
        self._event_role = role
        return None

    def _prove_mac(self):
        """Check the MAC of the authenticated frame in the decoder: its role and counter are
        proved (its reply will be signed) or _mac_reason says why not."""
        buf = self.decoder.buf
        signed = self.decoder.length - P.CRC_BYTES - auth.MAC_BYTES
        role, counter = struct.unpack_from("<ii", buf, signed - 8)
        view = memoryview(buf)
        self._mac_reason = self.auth.verify(role, view[:signed], view[signed:signed + auth.MAC_BYTES])
        if self._mac_reason == 0:
            self._proved_role = role
            self._proved_counter = counter

    def _signer(self, role):
        auth_ = self.auth
        return lambda message: auth_.mac(role, message)

    def _refuse(self, cmd, reason):
        """Nothing is applied; the refusal is logged (at most MAX_AUTH_EVENTS_PER_MIN a minute,
        so a flood of bad frames cannot wash therapy events out of the journal's ring)."""
        self.auth.rejected += 1
        now = self.controller.s.now_min
        if now != self._auth_min:
            self._auth_min = now
            self._auth_logged = 0
        if self._auth_logged < MAX_AUTH_EVENTS_PER_MIN:
            self._auth_logged += 1
            self.controller.note(journal.EV_AUTH, reason, cmd)
        else:
            self.auth_unlogged += 1
        return [P.E_UNAUTHORISED, reason]

    def _events(self, since_seq, security):
        j = self.controller.journal
        if since_seq < 0:
            # journal seqs start at 0, and Journal.events marks blank and corrupt ring records
            # with seq -1: a negative bound would return them, and their 0xFFFFFFFF seq does
            # not fit the reply's i32 (struct.error out of feed(): the board loop stops)
            since_seq = 0
        values = [kernel.OK, j.auth_seq if security else j.event_seq, 0]
        n = 0
        for ev in j.events(since_seq, security):
            if n == P.EVENTS_PER_REPLY:
                break
            values.extend(ev)
            n += 1
        values[2] = n
        return values

    # ------------------------------------------------------------ unsolicited events
    def _on_event(self, code, a, b, time_min):
        if code == journal.EV_COMMAND:
            return                              # the host has the reply
        if self._queued >= MAX_QUEUED_EVENTS:
            self.events_dropped += 1
            return
        self._queued += 1
        c = self.controller
        if not c.persist:
            seq = -1
        elif code == journal.EV_AUTH:
            seq = c.journal.auth_seq - 1        # the security ring has its own seq
        else:
            seq = c.journal.event_seq - 1
        role = self._event_role
        if role and seq >= 0:
            # signed with the key of the host that last sent an accepted command; the journal
            # seq is the counter (it only increases, per ring): a recorded event cannot be re-sent
            P.encode(self.out, P.T_AUTH_EVENT, seq, code, (seq, time_min, a, b), role, seq, self._signer(role))
        else:
            P.encode(self.out, P.T_EVENT, seq, code, (seq, time_min, a, b))

    # ------------------------------------------------------------ on a board
    def run(self):
        """The board loop. Anything unexpected stops the motor before it propagates."""
        t = self.transport
        try:
            out = self._take()
            while not t.closed:         # a board's line never closes; a simulated one may
                if out:
                    t.write(out)
                hook = self.maintenance
                if self.maintenance_pending and hook is not None:
                    self.controller.motor.set_rate(0)
                    hook()                      # resets the board: does not come back
                data = t.read()
                out = self.feed(data) if data else b""
                out += self.poll()
                if not out:
                    t.idle()
        except BaseException:
            self.controller.motor.set_rate(0)
            raise


class Transport:
    """The pump's line, as Board.run uses it. read() is called once per pass of the loop, so it
    also feeds the watchdog (hal.Watchdog): a pass that stalls reboots the board."""
    closed = False

    def __init__(self, watchdog=None):
        self.watchdog = watchdog

    def read(self):
        """Bytes waiting (None if none); feeds the watchdog."""
        return None

    def write(self, data):
        pass

    def idle(self):
        """Wait a little: nothing came and nothing is to be sent."""
        pass


class UartTransport(Transport):
    """A UART of the board (main.LINK a UART number)."""

    def __init__(self, uart, watchdog=None):
        self.uart = uart
        self.watchdog = watchdog

    def read(self):
        if self.watchdog is not None:
            self.watchdog.feed()
        n = self.uart.any()
        return self.uart.read(n) if n else None

    def write(self, data):
        self.uart.write(data)

    def idle(self):
        import time
        time.sleep_ms(1)


class ConsoleTransport(Transport):
    """The board's console (USB serial on most boards, the REPL's own port) as the pump's line:
    stdin read a byte at a time while select.poll says one is waiting, stdout written. Ctrl-C
    (0x03) is turned off while the pump runs, so it is a byte of a frame, never an interrupt
    that would stop the loop (and the motor) without a journal entry. Like UartTransport, read()
    feeds the watchdog once per pass of the loop."""

    MAX_READ = 64               # bytes per pass: the loop still ticks while a host floods it

    def __init__(self, watchdog=None, stdin=None, stdout=None):
        import select
        import sys
        self.watchdog = watchdog
        self.rx = stdin if stdin is not None else sys.stdin.buffer
        self.tx = stdout if stdout is not None else sys.stdout.buffer
        self.poller = select.poll()
        self.poller.register(self.rx, select.POLLIN)
        self.buf = bytearray(self.MAX_READ)
        self.closed = False
        try:
            import micropython
            micropython.kbd_intr(-1)
        except (ImportError, AttributeError):   # CPython: no keyboard interrupt to turn off
            pass

    def read(self):
        if self.watchdog is not None:
            self.watchdog.feed()
        n = 0
        while n < self.MAX_READ and self.poller.poll(0):
            try:
                b = self.rx.read(1)
            except OSError:     # the host's end of a pseudo-terminal went away
                b = b""
            if not b:           # end of input: only a simulated board's line ends
                self.closed = True
                break
            self.buf[n] = b[0]
            n += 1
        return bytes(self.buf[:n]) if n else None

    def write(self, data):
        self.tx.write(data)

    def idle(self):
        self.poller.poll(1)     # wait up to 1 ms for a byte


KEYS_MISSING = 0
KEYS_OK = 1
KEYS_BAD = 2
KEYS_RECOVERED = 3      # keys.bin missing or torn, the complete keys.new of a provisioning used


def read_keys(path=KEYS_PATH, new_path=KEYS_NEW_PATH):
    """(KEYS_*, {role: key} or None) from the provisioned key file (docs/security.md). A reset in
    the middle of provisioning can leave keys.bin missing or torn beside a complete keys.new:
    then the complete copy is used (the replay counters are kept either way)."""
    state, keys = _read_key_file(path)
    if state != KEYS_OK and new_path:
        again, new_keys = _read_key_file(new_path)
        if again == KEYS_OK:
            return KEYS_RECOVERED, new_keys
    return state, keys


def finish_provisioning(path=KEYS_PATH, new_path=KEYS_NEW_PATH):
    """After KEYS_RECOVERED: put the complete keys.new in place of keys.bin (a reset between
    the two steps leaves keys.new, which the next boot uses again)."""
    import os
    try:
        os.remove(path)
    except OSError:
        pass
    try:
        os.rename(new_path, path)
    except OSError:
        return False
    return True


def _read_key_file(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return KEYS_MISSING, None
    try:
        return KEYS_OK, auth.decode_keys(data)
    except ValueError:
        return KEYS_BAD, None


def in_maintenance():
    """True if boot must not start the pump: the flag file is on the board's flash (written by
    MAINTENANCE, or by hand) or the maintenance pin is held low (board wiring, MAINTENANCE_PIN)."""
    import os
    try:
        os.stat(MAINTENANCE_PATH)
        return True
    except OSError:
        pass
    if MAINTENANCE_PIN >= 0:
        import machine
        pin = machine.Pin(MAINTENANCE_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
        return pin.value() == 0
    return False


def enter_maintenance():
    """What MAINTENANCE does on a board once its reply is written: the flag file, then a reset
    (the motor is stopped already). The board comes back at the REPL, without the pump and
    without the watchdog, so `blinpump flash` can copy files for as long as it takes."""
    import machine
    import time
    with open(MAINTENANCE_PATH, "w") as f:
        f.write("blinpump: the pump starts when this file is removed (blinpump flash does it)\n")
    time.sleep_ms(100)          # the reply leaves the USB buffer before the reset
    machine.reset()


def start(link=LINK):
    """Boot entry on a board: the root main.py (written by `blinpump flash`) calls it. The pump
    runs (run) unless the board is in maintenance (in_maintenance): then it returns to the
    REPL before the watchdog starts, and says so on the console."""
    if in_maintenance():
        print("blinpump: maintenance: the pump is not started (remove %s, or release the maintenance "
              "pin, and reset)" % MAINTENANCE_PATH)
        return False
    run(link)
    return True


def _line(link, baud):
    """The pump's line: the console ("console") or UART number `link`."""
    if link == "console":
        return ConsoleTransport()
    import machine
    return UartTransport(machine.UART(link, baud))


def run(link=LINK, baud=UART_BAUD):
    """The pump on a board, forever: its line is the console (link "console": the USB serial the
    REPL uses) or UART number `link`."""
    from . import hal
    storage = hal.FileStorage(RECORD_PATH, journal.TOTAL_BYTES)
    motor = hal.StepperMotor(STEP_PIN, ENABLE_PIN, UL_PER_STEP_X1000)
    controller = pump.Controller(storage, hal.BoardClock(), motor)
    transport = _line(link, baud)
    # without a valid key file every command but HELLO is refused (fail closed)
    keys_state, keys = read_keys()
    authority = auth.Auth(keys, hal.FileStorage(COUNTERS_PATH, auth.TOTAL_BYTES))
    board = Board(transport, controller, P.BUILD_PRODUCTION, authority)
    board.maintenance = enter_maintenance
    # no battery-backed clock: the outage is unknown and counts as 4 h or more (L2-reinit-4h)
    board.boot(-1)
    if keys_state == KEYS_BAD:
        controller.note(journal.EV_CORRUPT, 3, 0)       # 3: the key file
    elif keys_state == KEYS_RECOVERED:
        controller.note(journal.EV_CORRUPT, 3, 1)       # b = 1: replaced by the complete keys.new
        finish_provisioning()
    # started after boot (mounting the flash after a power cut may take long), fed on every
    # pass of the loop from here: a stalled loop reboots the board (hal.Watchdog)
    transport.watchdog = hal.Watchdog()
    board.run()
