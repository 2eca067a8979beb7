"""The pump companion's firmware: what goes onto the board, as-is (MicroPython).

Modules import each other relatively (`from . import kernel`), so the package name is free: on
the host it is `blinpump.firmware`, on a board and in the
WebAssembly runtime the package is /firmware/*.mpy, compiled by mpy-cross (hil/build.py).
"""
