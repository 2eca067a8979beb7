"""Hardware layer: clock, motor, storage. A board implementation over `machine`/`time`,
and host implementations for CPython, the MicroPython WebAssembly runtime and tests.

Everything above this module sees only these small interfaces:
  clock.ms() -> monotonic milliseconds (may wrap; use clock.diff)
  clock.diff(a, b) -> a - b, wrap-safe
  motor.set_rate(ul_per_h) -> True if the motor took it
  storage.size(), storage.read(off, n) -> bytes, storage.write(off, data) -> True when durable
"""
import time

try:
    import machine
except ImportError:             # CPython and the WebAssembly port have no `machine`
    machine = None  # type: ignore[assignment]


# ---------------------------------------------------------------- clocks

class BoardClock:
    """time.ticks_ms wraps (2**30 ms on most ports): differences go through ticks_diff."""

    def ms(self):
        return time.ticks_ms()

    def diff(self, a, b):
        return time.ticks_diff(a, b)


class SimClock:
    """A clock the bench can fast-forward; optionally wrapping like a board's ticks."""

    def __init__(self, start_ms=0, period_ms=0):
        self.now = start_ms
        self.period = period_ms     # 0: never wraps

    def ms(self):
        return self.now

    def advance(self, ms):
        self.now += ms
        if self.period:
            self.now %= self.period

    def diff(self, a, b):
        d = a - b
        if self.period:
            half = self.period // 2
            d = (d + half) % self.period - half
        return d


# ---------------------------------------------------------------- motors

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


class StepperMotor:
    """A syringe/peristaltic stepper on a board: step pulses by PWM, enable pin active low."""

    def __init__(self, step_pin, enable_pin, ul_per_step_x1000):
        self.pwm = machine.PWM(machine.Pin(step_pin))
        self.enable = machine.Pin(enable_pin, machine.Pin.OUT, value=1)
        self.ul_per_step_x1000 = ul_per_step_x1000
        self.ul_per_h = 0

    def set_rate(self, ul_per_h):
        if ul_per_h <= 0:
            self.enable.value(1)
            self.pwm.duty_u16(0)
            self.ul_per_h = 0
            return True
        steps_per_h = ul_per_h * 1000 // self.ul_per_step_x1000
        freq = max(1, steps_per_h // 3600)
        self.pwm.freq(freq)
        self.pwm.duty_u16(32768)
        self.enable.value(0)
        self.ul_per_h = ul_per_h
        return True


# ---------------------------------------------------------------- storage

class PowerCut(Exception):
    """Raised by MemStorage when an injected power cut ends a write part-way."""


class MemStorage:
    """A byte array device. `cut_after` bytes from now, a write stops there and power is lost."""

    def __init__(self, size, fill=0xFF):
        self.data = bytearray(size)
        for i in range(size):      # MicroPython has no bytearray * int
            self.data[i] = fill
        self.cut_after = -1         # -1: no cut planned
        self.bytes_written = 0
        self.writes = 0

    def size(self):
        return len(self.data)

    def read(self, off, n):
        return bytes(self.data[off:off + n])

    def write(self, off, data):
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


class FileStorage:
    """A fixed-size file on the board's flash filesystem (littlefs on most ports)."""

    def __init__(self, path, size):
        self.path = path
        self._size = size
        try:
            f = open(path, "r+b")
        except OSError:
            f = open(path, "w+b")
        f.seek(0, 2)
        have = f.tell()
        if have < size:
            f.write(b"\x00" * (size - have))
            f.flush()
        self.f = f

    def size(self):
        return self._size

    def read(self, off, n):
        self.f.seek(off)
        return self.f.read(n)

    def write(self, off, data):
        try:
            self.f.seek(off)
            self.f.write(data)
            self.f.flush()
        except OSError:
            return False
        return True
