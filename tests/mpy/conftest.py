"""tests/mpy/ holds firmware tests that run twice: here on CPython (pytest collects their
unittest.TestCase classes) and on real MicroPython (tests/test_micropython.py runs every
tests/mpy/test_*.py there through hil/mpy_runner.mjs, against the mpy-cross compiled firmware).

Rules for files here, so they run on both: MicroPython's unittest subset only (TestCase,
setUp/tearDown, assertEqual, assertTrue, assertRaises, skipTest); no typing imports, no
f-string `=` debugging; a class-level skip decorator only to skip on CPython (one that
applies on MicroPython turns the class into a function there and its tests silently vanish:
skip test methods instead); every test is a
`def test*` method of a TestCase class in the file itself (the MicroPython run checks that
it ran as many tests as the files define). Other .py files here (not conftest.py) are
importable helpers on both interpreters; `fw.py` imports the firmware under its name on each
(`blinpump.firmware` here, `firmware` on MicroPython).
"""
