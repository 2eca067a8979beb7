"""A simulated pump behind a pseudo-terminal: any serial tool (pyserial, screen, minicom) opens it.

    board = SimBoard("cpython")          # or "micropython"
    print(board.path)                    # /dev/pts/N, raw mode
    ...
    board.close()

- cpython: firmware.simboard (the firmware modules as .py) runs in a thread of this process.
- micropython: hil/mpy_board.mjs runs the .mpy files compiled by hil/build.py in the official
  WebAssembly MicroPython under Node; its stdin/stdout carry the raw link bytes (hex-wrapped
  between Node and MicroPython so that no byte is translated), stderr carries its log.
Either way this module copies bytes between the pty master and the board, so the serial side
is a real tty. BoardLink is the same board without a tty, for tests of the link itself.

`kernel=PATH` runs the board with that file as its safety kernel (a mutant, to replay its
counterexample over serial): the firmware is copied to a folder of the board's own with PATH as
kernel.py, then imported afresh under a package name of its own (cpython) or compiled there
(micropython); the landed firmware is never touched.

`link=PATH` also makes PATH a symbolic link to the pty. PATH must not exist: a file, a folder or
a symbolic link already there (even a stale one of an earlier board) is never replaced, it may be
someone's (SimLinkError). On close the link is removed only if it still points to this board's pty.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import itertools
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from collections import deque
from pathlib import Path
from types import ModuleType
from typing import Any

from blinpump.hil import build

REPO = build.REPO
BRIDGE = REPO / "hil" / "mpy_board.mjs"
# micropython: the WebAssembly port under Node; unix: the MicroPython unix port on a pty
RUNTIMES = ("cpython", "micropython", "unix")
LANDED_KERNEL = REPO / build.PACKAGE / "kernel.py"
UNIX_BOARD_HEAP = 2 * 1024 * 1024     # the unix port's default heap (64-bit objects: not a board's)
_packages = itertools.count(1)          # each board with its own kernel gets a package name of its own


class SimError(RuntimeError):
    pass


class SimLinkError(SimError):
    """The link cannot be made where it was asked for; the message says why."""


class SimBoard:
    def __init__(self, runtime: str = "cpython", link: str | os.PathLike[str] | None = None,
                 start_timeout_s: float = 30.0, kernel: str | os.PathLike[str] | None = None) -> None:
        if runtime not in RUNTIMES:
            raise ValueError("runtime must be one of %s" % ", ".join(RUNTIMES))
        self.runtime = runtime
        # a kernel other than the landed one: the firmware copied into a folder of this board's
        self.kernel = Path(kernel).resolve() if kernel is not None else LANDED_KERNEL
        self._own: tempfile.TemporaryDirectory[str] | None = None
        self._package = ""
        self.log: deque[str] = deque(maxlen=200)
        self.sim: Any = None            # the firmware.simboard.Sim object (cpython runtime)
        self.proc: subprocess.Popen[bytes] | None = None
        self._board_in = -1             # fds of the board process: link bytes to it, from it, its log
        self._board_out = -1
        self._board_log = -1
        self._board_pty = -1            # unix: the board's own pseudo-terminal (master side)
        self._to_board = bytearray()
        self._stop = False
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)          # before any byte moves: no echo, no \n translation
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.link: Path | None = None
        self._pending = bytearray()      # board -> host bytes not yet written to the pty
        try:
            if link is not None:
                self._make_link(link)   # before the board starts: a refusal leaves nothing behind
            if self.kernel != LANDED_KERNEL:
                self._own = tempfile.TemporaryDirectory(prefix="blinpump-sim-")
                copy_firmware(self.kernel, Path(self._own.name) / "src")
            if runtime == "cpython":
                simboard = self._simboard_module()
                self.sim = simboard.make_board()
                self._pending += self.sim.board._take()      # the boot banner
                target = self._serve_cpython
            elif runtime == "unix":
                self._start_unix(start_timeout_s)
                target = self._serve_process
            else:
                self._start_node(start_timeout_s)
                target = self._serve_process
        except BaseException:
            self._remove_link()
            self._close_fds()
            self._drop_own()
            raise
        self._thread = threading.Thread(target=target, name="sim-board-%s" % runtime, daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> SimBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop = True
        if self._board_pty >= 0:
            self._thread.join(timeout=5)     # it selects on the board's pty: closed after it stops
        if self.proc and self.proc.poll() is None:
            if self.proc.stdin:
                self.proc.stdin.close()
            if self._board_pty >= 0:
                os.close(self._board_pty)    # the board reads the end of its input and returns
                self._board_pty = -1
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._board_pty >= 0:
            os.close(self._board_pty)
            self._board_pty = -1
        self._thread.join(timeout=5)
        for stream in (self.proc.stdout, self.proc.stderr) if self.proc else ():
            if stream is not None:
                stream.close()
        self._remove_link()             # before the pty goes: its number may be given out again
        self._close_fds()
        self._drop_own()

    def _simboard_module(self) -> ModuleType:
        """firmware.simboard: the landed package, or this board's copy imported as a package of
        its own (its modules import each other relatively, so they all come from the copy)."""
        if self._own is None:
            from blinpump.firmware import simboard
            return simboard
        folder = Path(self._own.name) / "src" / build.PACKAGE
        digest = hashlib.sha256(self.kernel.read_bytes()).hexdigest()[:12]
        self._package = "blinpump_sim_firmware_%d_%s" % (next(_packages), digest)
        spec = importlib.util.spec_from_file_location(self._package, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])
        assert spec is not None and spec.loader is not None
        package = importlib.util.module_from_spec(spec)
        sys.modules[self._package] = package
        spec.loader.exec_module(package)
        return importlib.import_module(self._package + ".simboard")

    def _drop_own(self) -> None:
        """Forget this board's copy of the firmware (its modules, its folder)."""
        for name in [n for n in sys.modules if self._package and (n == self._package or
                                                                 n.startswith(self._package + "."))]:
            del sys.modules[name]
        if self._own is not None:
            self._own.cleanup()
            self._own = None

    def _make_link(self, link: str | os.PathLike[str]) -> None:
        path = Path(link)
        if not os.fspath(link).strip():
            raise SimLinkError("empty path")
        try:
            os.symlink(self.path, path)         # fails if anything is there: nothing is replaced
        except FileExistsError:
            what = ("a symbolic link to %s" % os.readlink(path) if path.is_symlink()
                    else "a directory" if path.is_dir() else "a file")
            raise SimLinkError("%s exists (%s) and is not this board's link: not replaced; remove it "
                               "or choose another path" % (path, what)) from None
        except OSError as exc:
            raise SimLinkError("cannot make %s: %s" % (path, exc.strerror or exc)) from None
        self.link = path

    def _remove_link(self) -> None:
        """Remove the link if it is still ours (a symbolic link to this board's pty)."""
        if self.link is None:
            return
        try:
            if os.readlink(self.link) == self.path:
                os.unlink(self.link)
        except OSError:
            pass                # gone, or replaced by something that is not ours: left alone
        self.link = None

    def _close_fds(self) -> None:
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def alive(self) -> bool:
        return self._thread.is_alive() and (self.proc is None or self.proc.poll() is None)

    # ---------------------------------------------------------------- pty side
    def _flush_to_pty(self) -> None:
        while self._pending:
            try:
                n = os.write(self.master, self._pending)
            except BlockingIOError:
                return
            del self._pending[:n]

    def _read_pty(self) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def _serve_cpython(self) -> None:
        board = self.sim.board
        while not self._stop:
            w = [self.master] if self._pending else []
            r, w, _ = select.select([self.master], w, [], 0.2)
            if r:
                data = self._read_pty()
                if data:
                    self._pending += board.feed(data)
                    self._pending += board.poll()
            self._flush_to_pty()

    # ---------------------------------------------------------------- board processes
    def _compiled_root(self) -> Path:
        """The .mpy tree the board process imports: the landed build, or this board's own."""
        if self._own is None:
            root = REPO / build.DEFAULT_OUT_DIR
            build.compile_firmware(root)
        else:
            root = Path(self._own.name) / "mpy"
            build.compile_firmware(root, Path(self._own.name) / "src")
        return root

    def _wait_ready(self, marker: bytes, timeout_s: float, what: str) -> None:
        """Read the board process's stderr until `marker` (its boot banner is out), then keep
        stderr as the log; SimError (the process killed and reaped) if it ends or goes silent."""
        assert self.proc and self.proc.stderr
        err = self.proc.stderr.fileno()
        buf = b""
        while marker not in buf:
            r, _, _ = select.select([err], [], [], timeout_s)
            chunk = os.read(err, 4096) if r else b""
            if not chunk:
                self.proc.kill()
                self.proc.wait()
                self.proc.stderr.close()
                raise SimError("%s did not start:\n%s" % (what, buf.decode("utf-8", "replace")))
            buf += chunk
        self.log.extend(buf.decode("utf-8", "replace").splitlines())
        os.set_blocking(err, False)
        self._board_log = err

    def _start_node(self, timeout_s: float) -> None:
        from blinpump.hil import micropython
        node = micropython.require_runtime()
        root = self._compiled_root()
        self.proc = subprocess.Popen([node, str(BRIDGE), "--root", str(root)], cwd=REPO,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stdin and self.proc.stdout
        os.set_blocking(self.proc.stdout.fileno(), False)
        self._wait_ready(b"mpy_board: ready", timeout_s, "MicroPython board")
        self._board_in = self.proc.stdin.fileno()
        self._board_out = self.proc.stdout.fileno()

    def _start_unix(self, timeout_s: float) -> None:
        """firmware.simboard.run_console under the MicroPython unix port, its stdin and stdout a
        pseudo-terminal of its own in raw mode (as a board's USB serial), its stderr the log."""
        from blinpump.hil import micropython
        exe = micropython.require_unix()
        root = self._compiled_root()
        master, slave = os.openpty()
        tty.setraw(slave)
        code = "import sys\nsys.path[:] = ['', '.frozen']\nfrom firmware import simboard\nsimboard.run_console()\n"
        try:
            self.proc = subprocess.Popen([exe, "-X", "heapsize=%d" % UNIX_BOARD_HEAP, "-c", code], cwd=root,
                                         stdin=slave, stdout=slave, stderr=subprocess.PIPE)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        try:
            self._wait_ready(b"simboard: ready", timeout_s, "MicroPython unix-port board")
        except SimError:
            os.close(master)
            raise
        self._board_pty = self._board_in = self._board_out = master

    # ---------------------------------------------------------------- a board process
    def _serve_process(self) -> None:
        """Copy bytes host pty -> board process -> host pty, and the board's stderr to the log."""
        proc = self.proc
        assert proc
        out, err = self._board_out, self._board_log
        while not self._stop and proc.poll() is None:
            w = [self.master] if self._pending else []
            if self._to_board:
                w.append(self._board_in)
            try:
                r, w, _ = select.select([self.master, out, err], w, [], 0.2)
            except (OSError, ValueError):           # closed under us by close()
                break
            if self.master in r:
                self._to_board += self._read_pty()
            if self._to_board and (self._board_in in w or self._board_in != out):
                try:
                    n = os.write(self._board_in, self._to_board)
                    del self._to_board[:n]
                except BlockingIOError:
                    pass
                except (BrokenPipeError, OSError):
                    break
            if out in r:
                try:
                    self._pending += os.read(out, 65536)
                except BlockingIOError:
                    pass
                except OSError:
                    break
            if err in r:
                try:
                    self.log.extend(os.read(err, 65536).decode("utf-8", "replace").splitlines())
                except BlockingIOError:
                    pass
            self._flush_to_pty()


def copy_firmware(kernel: str | os.PathLike[str], src_root: Path) -> Path:
    """The firmware sources under `src_root`/firmware with `kernel` as kernel.py; returns its path."""
    for src in build.firmware_sources(REPO):
        dst = src_root / src.relative_to(REPO)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)
    target = src_root / build.PACKAGE / "kernel.py"
    shutil.copyfile(kernel, target)
    return target


class BoardLink:
    """A pyserial-like object wired straight to a simulated Board (no tty, synchronous).

    Subclass and override to_board()/to_host() to drop, corrupt, duplicate or delay bytes.
    """

    def __init__(self, sim: Any = None) -> None:
        if sim is None:
            from blinpump.firmware import simboard
            sim = simboard.make_board()
        self.sim = sim
        self.timeout = 0.05
        self.rx = bytearray(self.to_host(sim.board._take()))

    def to_board(self, data: bytes) -> bytes:
        return data

    def to_host(self, data: bytes) -> bytes:
        return data

    def write(self, data: bytes) -> int:
        board = self.sim.board
        self.rx += self.to_host(board.feed(self.to_board(bytes(data))) + board.poll())
        return len(data)

    @property
    def in_waiting(self) -> int:
        return len(self.rx)

    def read(self, n: int = 1) -> bytes:
        data = bytes(self.rx[:n])
        del self.rx[:n]
        if not data:
            time.sleep(0.0005)      # nothing will come: do not spin the caller's timeout loop
        return data

    def close(self) -> None:
        pass
