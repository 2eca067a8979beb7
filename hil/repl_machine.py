# Runs under the MicroPython unix port, inside the REPL board (hil/replboard.py): the `machine`
# module of that board, standing in for a board's C module. The unix port's own `machine` has
# no reset, watchdog, pins or PWM; the board's firmware imports this one under that name.
#
# reset() and soft_reset() end this interpreter; the supervisor starts the next one on the
# same pseudo-terminal and the same flash folder (a hard reset runs boot.py and main.py again).
# WDT reports to the supervisor on stderr, which resets the board when it is not fed in time.
import sys
import time

EXIT_SOFT_RESET = 3         # process exit statuses the supervisor reads (hil/replboard.py)
EXIT_SOFT_RESET_RAW = 4
EXIT_HARD_RESET = 5


class Reset(BaseException):
    """Unwinds everything (like a reset, nothing catches it for good) to the REPL board's loop."""

    def __init__(self, status):
        self.status = status


def reset():
    raise Reset(EXIT_HARD_RESET)


def soft_reset():
    raise Reset(EXIT_SOFT_RESET)


def _report(line):
    sys.stderr.write(line + "\n")


class WDT:
    """A watchdog the supervisor keeps: started once, never stopped; fed at most every
    REPORT_MS on stderr, so a busy loop costs little."""
    REPORT_MS = 200

    def __init__(self, id=0, timeout=5000):
        self._last = time.ticks_ms()
        _report("WDT start %d" % timeout)

    def feed(self):
        now = time.ticks_ms()
        if time.ticks_diff(now, self._last) >= self.REPORT_MS:
            self._last = now
            _report("WDT feed")


class Pin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._value = 1 if pull == Pin.PULL_UP else 0
        if value is not None:
            self._value = value

    def value(self, v=None):
        if v is None:
            return self._value
        self._value = 1 if v else 0
        return None

    def init(self, *args, **kwargs):
        pass


class PWM:
    """The stepper's pulses: only remembered (this board has no motor)."""

    def __init__(self, pin, freq=0, duty_u16=0):
        self.pin = pin
        self._freq = freq
        self._duty = duty_u16

    def freq(self, f=None):
        if f is None:
            return self._freq
        self._freq = f
        return None

    def duty_u16(self, d=None):
        if d is None:
            return self._duty
        self._duty = d
        return None

    def deinit(self):
        self._duty = 0


def idle():
    time.sleep_ms(1)


def unique_id():
    return b"replbrd0"
