"""The firmware under test, imported the same way on both interpreters:
`blinpump.firmware` on CPython (the installed package), `firmware` on MicroPython (the
mpy-cross .mpy files at /firmware, as on a board). The firmware imports itself relatively,
so either name gives the same modules."""
try:
    from blinpump.firmware import auth, codes, journal, kernel, main, protocol, pump, simboard, simhal
except ImportError:
    from firmware import auth, codes, journal, kernel, main, protocol, pump, simboard, simhal

__all__ = ["auth", "codes", "journal", "kernel", "main", "protocol", "pump", "simboard", "simhal"]
