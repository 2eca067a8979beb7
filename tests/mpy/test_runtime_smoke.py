"""The runtime the firmware runs on: checks that hold on CPython (pytest) and on real
MicroPython (tests/test_micropython.py runs this file under hil/mpy_runner.mjs).

Written against MicroPython's unittest subset: TestCase, setUp, assertEqual, assertTrue,
assertRaises, skipUnless. Checks that only make sense on MicroPython skip on CPython.
"""
import struct
import sys
import time
import unittest

MICROPYTHON = sys.implementation.name == "micropython"


class TestFirmwarePackage(unittest.TestCase):
    def test_firmware_package_imports_under_its_name_on_each_interpreter(self):
        # a board's package is `firmware` (its name is free: the firmware imports itself
        # relatively); on the host it is installed as `blinpump.firmware`, never `firmware`
        from fw import kernel
        expected = "firmware.kernel" if MICROPYTHON else "blinpump.firmware.kernel"
        self.assertEqual(kernel.__name__, expected)

    def test_firmware_comes_from_mpy_on_micropython(self):
        from fw import kernel
        where = getattr(kernel, "__file__", "")
        if MICROPYTHON:
            self.assertTrue(where.endswith("kernel.mpy"), where)
        else:
            self.assertTrue(where.endswith("kernel.py"), where)


@unittest.skipUnless(MICROPYTHON, "MicroPython's ticks API")
class TestTicks(unittest.TestCase):
    def setUp(self):
        self.top = time.ticks_add(0, -1)       # the largest tick value, just before the wrap

    def test_ticks_diff_across_the_wrap(self):
        later = time.ticks_add(self.top, 5)
        self.assertTrue(later < self.top)      # the raw value wrapped around...
        self.assertEqual(time.ticks_diff(later, self.top), 5)   # ...the difference did not
        self.assertEqual(time.ticks_diff(self.top, later), -5)

    def test_ticks_period_is_a_power_of_two(self):
        period = self.top + 1
        self.assertEqual(period & (period - 1), 0)
        self.assertTrue(period >= 1 << 22)     # at least ~70 minutes of milliseconds

    def test_ticks_wrap_where_each_port_wraps(self):
        # the 32-bit WebAssembly port wraps as most boards do, at 2**30 ms (12.4 days: inside
        # one 28-day infusion); the 64-bit unix port at 2**62. The firmware's own wrap tests use
        # a clock rig (clock_rig.py), so they hold on either.
        if sys.platform == "webassembly":
            self.assertEqual(self.top + 1, 1 << 30)
        elif sys.platform == "linux":
            self.assertEqual(self.top + 1, 1 << 62)
        else:
            self.skipTest("a port whose wrap this test does not know: %s" % sys.platform)

    def test_ticks_ms_does_not_run_backwards(self):
        a = time.ticks_ms()
        b = time.ticks_ms()
        self.assertTrue(time.ticks_diff(b, a) >= 0)


@unittest.skipUnless(MICROPYTHON, "MicroPython's gc API")
class TestHeap(unittest.TestCase):
    def test_gc_reports_heap_use(self):
        import gc
        gc.collect()
        before = gc.mem_alloc()
        keep = bytearray(4096)
        self.assertTrue(gc.mem_alloc() >= before + 4096)
        self.assertTrue(gc.mem_free() > 0)
        self.assertEqual(len(keep), 4096)


class TestIntegers(unittest.TestCase):
    def test_integers_past_31_bits(self):
        # Small ints are 31-bit on MicroPython; dose totals in ng must not overflow there.
        big = (1 << 31) * 28 * 24 * 3600
        self.assertEqual(big // (28 * 24 * 3600), 1 << 31)
        self.assertEqual(-7 // 2, -4)           # floor division, as on CPython
        self.assertEqual(-7 % 2, 1)

    def test_struct_round_trip(self):
        data = struct.pack("<IiH", 0xDEADBEEF, -2, 65535)
        self.assertEqual(len(data), 10)
        self.assertEqual(struct.unpack("<IiH", data), (0xDEADBEEF, -2, 65535))


class TestPlatform(unittest.TestCase):
    @unittest.skipUnless(MICROPYTHON and sys.platform == "linux", "the unix port")
    def test_the_unix_port_has_a_machine_module_without_board_peripherals(self):
        # so firmware/hal.py imports machine there, and main.run() cannot drive a motor or a
        # UART on it: a board's peripherals come from the board (the REPL board gives its own)
        import machine
        self.assertFalse(hasattr(machine, "UART") or hasattr(machine, "PWM") or hasattr(machine, "WDT"))
        self.assertEqual(struct.calcsize("P"), 8)          # 64-bit: heap figures are not a board's

    @unittest.skipUnless(sys.platform == "webassembly", "the WebAssembly port")
    def test_no_machine_module_in_the_webassembly_port(self):
        # So firmware/hal.py must fall back to its host implementations there.
        self.assertRaises(ImportError, __import__, "machine")


HEAP_LOCK_TICKS = 2000      # a running 7-day bag: every tick books a minute of drug


@unittest.skipUnless(MICROPYTHON, "MicroPython's heap_lock")
class TestTickUnderHeapLock(unittest.TestCase):
    """No allocation on the kernel's tick (Power of Ten: none after start-up), shown with
    micropython.heap_lock(): while it holds, any allocation raises MemoryError. The WebAssembly
    port does not raise there: an allocation under the lock never returns (measured), so these
    run on ports that raise, and the WebAssembly port's figure is bench/firmware_bench.py's."""

    def locked_port(self):
        if sys.platform == "webassembly":
            self.skipTest("an allocation under heap_lock hangs this port instead of raising")

    def test_an_allocation_under_heap_lock_raises(self):
        self.locked_port()
        import micropython
        raised = False
        micropython.heap_lock()
        try:
            keep = [1, 2, 3]
        except MemoryError:
            raised = True
        micropython.heap_unlock()
        self.assertTrue(raised)

    def test_the_kernel_tick_allocates_nothing_under_heap_lock(self):
        self.locked_port()
        import micropython
        from fw import kernel as k
        from kernel_helpers import patient, start_bag
        s = patient()
        self.assertEqual(start_bag(s, 28000, 168), k.OK)
        k.tick(s)                       # a first tick outside the lock (a first call may allocate once)
        booked = s.bag_run_min
        ticks = range(HEAP_LOCK_TICKS)
        done = 0
        micropython.heap_lock()
        try:
            for _ in ticks:
                k.tick(s)
                done += 1
        except MemoryError:
            pass
        micropython.heap_unlock()
        self.assertEqual(done, HEAP_LOCK_TICKS)
        self.assertEqual(s.mode, k.MODE_RUNNING)
        self.assertEqual(s.bag_run_min, booked + HEAP_LOCK_TICKS)
