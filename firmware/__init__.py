"""The pump companion's firmware: what goes onto the board, as-is (MicroPython).

Modules import each other as `from firmware import kernel`; on a board and in the
WebAssembly runtime the package is /firmware/*.mpy, compiled by mpy-cross (hil/build.py).
"""
