"""Hardware layer of a board: clock, motor, storage over `machine`/`time`.
The simulated plant (clock, motor, flash with power cuts) is in firmware/simhal.py, so a
board never loads it.

Everything above this module sees only these small interfaces:
  clock.ms() -> monotonic milliseconds (may wrap; use clock.diff)
  clock.diff(a, b) -> a - b, wrap-safe
  motor.set_rate(ul_per_h) -> True if the motor took it
  storage.size(), storage.read(off, n) -> bytes, storage.write(off, data) -> True when durable
  watchdog.feed() -> None, once per pass of the board loop
  sensors.line_present() -> True while an occlusion, air-in-line or door condition exists
    (pump.Controller refuses START then; optional: main.run wires none yet, the sensor pins
    are the board's own, so a board without them never blocks START)
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


# ---------------------------------------------------------------- watchdog

WDT_TIMEOUT_MS = 8000           # below the RP2040's longest (8388 ms); ESP32 and STM32 allow it


class Watchdog:
    """The board's hardware watchdog (machine.WDT). Board only: once started it cannot be
    stopped, so main.run() starts it after boot, just before the loop, and
    main.UartTransport.read() feeds it on every pass of the loop.

    If a pass stalls for WDT_TIMEOUT_MS the board resets: the motor stops (board wiring: the
    stepper driver's ENABLE line needs a pull-up, so it reads "disabled" while the pins float
    during and after a reset), RAM is lost, and boot reports an unknown outage, so the open
    interruption counts as 4 h or more (L2-reinit-4h) and the bag is discarded (L2.6-bag-*).
    It also bounds every gap pump.Controller.poll can see to far below half the tick
    counter's period (2**29 ms), the range in which time.ticks_diff is exact, and bounds how
    long the motor can run past the minute the last tick booked."""

    def __init__(self, timeout_ms=WDT_TIMEOUT_MS):
        self.wdt = machine.WDT(timeout=timeout_ms)

    def feed(self):
        self.wdt.feed()


# ---------------------------------------------------------------- motors

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
