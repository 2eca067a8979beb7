"""Simulated hardware: a clock the bench fast-forwards, a motor that records its rate, and a
flash device that can lose power part-way through a write. Same interfaces as firmware/hal.py;
used by the simulated board and the tests, never loaded on a board.
"""


class SimClock:
    """A clock the bench can fast-forward; optionally wrapping like a board's ticks
    (period_ms=2**30: time.ticks_ms on most ports). advance() may go backwards too: a clock
    fault, for the tests of pump.Controller.poll."""

    def __init__(self, start_ms=0, period_ms=0):
        self.period = period_ms     # 0: never wraps
        self.now = 0
        self.restart(start_ms)

    def ms(self):
        return self.now

    def advance(self, ms):
        self.now += ms
        if self.period:
            self.now %= self.period

    def restart(self, ms=0):
        """A reset board's tick counter starts again, here from ms."""
        self.now = ms % self.period if self.period else ms

    def diff(self, a, b):
        """a - b like time.ticks_diff: in [-period/2, period/2) when the clock wraps."""
        d = a - b
        if self.period:
            half = self.period // 2
            d = (d + half) % self.period - half
        return d


class SimMotor:
    """Records what the kernel commanded; the plant of the simulated board."""

    def __init__(self):
        self.ul_per_h = 0
        self.changes = 0
        self.fail = False           # fault injection: the motor stops answering

    def set_rate(self, ul_per_h):
        if self.fail:
            return False
        if ul_per_h != self.ul_per_h:
            self.changes += 1
        self.ul_per_h = ul_per_h
        return True


class SimSensors:
    """The line sensors of the simulated plant: which conditions exist now (a bit per sensor),
    set and cleared by the FAULT simulation command. They survive a power cut (the plant's)."""

    def __init__(self):
        self.present = 0

    def line_present(self):
        return self.present != 0


class PowerCut(Exception):
    """Raised by MemStorage when an injected power cut ends a write part-way."""


class MemStorage:
    """A byte array device. `cut_after` bytes from now, a write stops there and power is lost;
    while `fail` is set every write fails (flash full, I/O error) and changes nothing."""

    def __init__(self, size, fill=0xFF):
        self.data = bytearray(size)
        for i in range(size):      # MicroPython has no bytearray * int
            self.data[i] = fill
        self.cut_after = -1         # -1: no cut planned
        self.fail = False
        self.bytes_written = 0
        self.writes = 0

    def size(self):
        return len(self.data)

    def read(self, off, n):
        return bytes(self.data[off:off + n])

    def write(self, off, data):
        if self.fail:
            return False
        n = len(data)
        if self.cut_after >= 0 and self.cut_after < n:
            k = self.cut_after
            self.data[off:off + k] = data[:k]
            self.bytes_written += k
            self.cut_after = -1
            raise PowerCut()
        if self.cut_after >= 0:
            self.cut_after -= n
        self.data[off:off + n] = data
        self.bytes_written += n
        self.writes += 1
        return True
