# Runs under the MicroPython unix port: the REPL board's device side (hil/replboard.py starts
# it on a pseudo-terminal in raw mode, with a folder as the board's flash).
#
# usage: micropython hil/repl_device.py FLASH_DIR (power-on | soft | soft-raw)
#
# One run of this program is one life of the interpreter between resets, as on a board:
#   power-on   boot.py, then main.py, then the friendly REPL
#   soft       "MPY: soft reboot", boot.py, main.py, the friendly REPL (Ctrl-D at ">>> ")
#   soft-raw   "MPY: soft reboot", boot.py, the raw REPL (Ctrl-D on an empty raw line):
#              main.py does not run in raw mode, as on MicroPython's bare-metal ports
# The REPL speaks MicroPython's protocol as mpremote expects it: raw REPL (Ctrl-A; Ctrl-D runs
# the code and answers OK, output, 0x04, error, 0x04, ">"), raw-paste (0x05 'A' 0x01, answered
# "R\x01" with a flow-control window), Ctrl-B back to the friendly REPL, Ctrl-C clears the line.
# FLASH_DIR is mounted at / (os.VfsPosix), so the board sees only its own flash.
# Exit status (hil/repl_machine.py): 3 soft reset, 4 soft reset in raw mode, 5 hard reset,
# 0 when the host side of the line is gone.
import os
import sys

here = sys.argv[0].rpartition("/")[0] or "."
sys.path.insert(0, here)
import repl_machine  # noqa: E402  (before the flash is mounted at /: it is not on the flash)
sys.path.pop(0)

WINDOW = 128                # raw-paste flow control: bytes per window (half a 256-byte buffer)
CTRL_A = 1
CTRL_B = 2
CTRL_C = 3
CTRL_D = 4
CTRL_E = 5

_in = sys.stdin.buffer
_out = sys.stdout.buffer


def write(data):
    _out.write(data if isinstance(data, bytes) else data.encode())


def read_byte():
    try:
        b = _in.read(1)
    except OSError:
        b = b""
    if not b:
        raise repl_machine.Reset(0)     # the line is gone: power off
    return b[0]


def run_file(name, scope):
    try:
        os.stat(name)
    except OSError:
        return
    with open(name) as f:
        source = f.read()
    run_printing(source, name, "exec", scope)


def run_printing(source, name, mode, scope):
    """Run code as a board does outside the raw REPL: an error's traceback is printed and the
    board goes on to its REPL; only a reset unwinds."""
    try:
        exec(compile(source, name, mode), scope)
    except repl_machine.Reset:
        raise
    except BaseException as exc:
        sys.print_exception(exc, sys.stdout)


def execute(source, scope):
    """Raw REPL execution: output, 0x04, the error's traceback, 0x04."""
    try:
        exec(compile(source, "<stdin>", "exec"), scope)
        write(b"\x04")
    except repl_machine.Reset:
        raise
    except SystemExit:                  # as on a board: sys.exit() in the raw REPL soft-resets
        write(b"\x04\x04")
        raise repl_machine.Reset(repl_machine.EXIT_SOFT_RESET_RAW)
    except BaseException as exc:
        write(b"\x04")
        sys.print_exception(exc, sys.stdout)
    write(b"\x04")


def raw_paste():
    """Read a raw-paste block with flow control; returns its bytes (Ctrl-D ends it)."""
    write(b"R\x01" + bytes((WINDOW & 0xFF, WINDOW >> 8)) + b"\x01")
    data = bytearray()
    remain = WINDOW
    while True:
        c = read_byte()
        if c == CTRL_D or c == CTRL_C:
            write(b"\x04")
            return bytes(data) if c == CTRL_D else None
        data.append(c)
        remain -= 1
        if remain == 0:
            write(b"\x01")              # another window may come
            remain = WINDOW


def raw_repl(scope):
    write(b"raw REPL; CTRL-B to exit\r\n")
    while True:
        write(b">")
        line = bytearray()
        while True:
            c = read_byte()
            if c == CTRL_A:
                if len(line) == 2 and line[0] == CTRL_E and line[1] == ord("A"):
                    source = raw_paste()
                    if source is not None:
                        execute(source, scope)
                    break
                write(b"raw REPL; CTRL-B to exit\r\n")
                line = bytearray()
                write(b">")
            elif c == CTRL_B:
                write(b"\r\n")
                return
            elif c == CTRL_C:
                line = bytearray()
            elif c == CTRL_D:
                write(b"OK")
                if not line:
                    write(b"\r\n")
                    raise repl_machine.Reset(repl_machine.EXIT_SOFT_RESET_RAW)
                execute(bytes(line), scope)
                break
            else:
                line.append(c)


def friendly_repl(scope):
    write("MicroPython %s (blinpump REPL board, unix port); Type \"help()\" for more information.\r\n"
          % ".".join(str(v) for v in sys.implementation.version[:3]))
    while True:
        write(b">>> ")
        line = bytearray()
        while True:
            c = read_byte()
            if c == CTRL_A:
                write(b"\r\n")
                raw_repl(scope)
                write("MicroPython (blinpump REPL board)\r\n")
                break
            if c == CTRL_D and not line:
                write(b"\r\n")
                raise repl_machine.Reset(repl_machine.EXIT_SOFT_RESET)
            if c == CTRL_C:
                write(b"\r\nKeyboardInterrupt\r\n")
                break
            if c == 13:
                write(b"\r\n")
                if line:
                    run_printing(bytes(line), "<stdin>", "single", scope)
                break
            if c == 8 or c == 127:
                if line:
                    line.pop()
                    write(b"\x08 \x08")
                continue
            if c >= 32:
                line.append(c)
                write(bytes((c,)))


def life(mode):
    if mode != "power-on":
        write(b"MPY: soft reboot\r\n")
    scope = {"__name__": "__main__"}
    run_file("boot.py", scope)
    if mode == "soft-raw":
        raw_repl(scope)                 # until Ctrl-B
    else:
        run_file("main.py", {"__name__": "__main__"})
    friendly_repl(scope)


def main():
    flash, mode = sys.argv[1], sys.argv[2]
    os.umount("/")
    os.mount(os.VfsPosix(flash), "/")
    os.chdir("/")
    sys.path[:] = ["", ".frozen", "/lib"]
    sys.modules["machine"] = repl_machine
    try:
        life(mode)
    except repl_machine.Reset as reset:
        return reset.status
    return 0


sys.exit(main())
