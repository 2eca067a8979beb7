# A MicroPython manifest (docs.micropython.org, "MicroPython manifest files"): the production
# firmware, to freeze into a board's MicroPython image, e.g.
#     make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Frozen, the bytecode and its constants stay in flash instead of the heap (README, "Heap").
# The files are listed one by one: the simulation modules (simboard.py, simhal.py) are never
# frozen into a pump. The board still needs its root main.py (`blinpump flash` writes it):
#     from firmware import main
#     main.start()
# This file is not a module of the firmware: hil/build.py leaves it out of every build.
# MicroPython's tools run it on the host, in the folder it is in: it also generates
# firmware/kernel_sha.py, the sha256 of kernel.py (the proven source) that HELLO reports, so a
# frozen kernel names the proven bytes as a kernel.mpy file does (hil/build.py writes the same).
import hashlib
import os
import tempfile

with open("kernel.py", "rb") as _f:
    _kernel_sha256 = hashlib.sha256(_f.read()).hexdigest()
_generated = tempfile.mkdtemp(prefix="blinpump-kernel-sha-")
os.mkdir(os.path.join(_generated, "firmware"))
with open(os.path.join(_generated, "firmware", "kernel_sha.py"), "w") as _f:
    _f.write("# Generated at build time: the sha256 of firmware/kernel.py (the proven source), and of\n"
             "# the kernel.mpy built from it (empty when frozen: HELLO trusts it only for that file).\n"
             "KERNEL_SHA256 = \"%s\"\nKERNEL_MPY_SHA256 = \"\"\n" % _kernel_sha256)

metadata(
    description="blinpump: the BLINCYTO infusion safety kernel, power-safe record, serial protocol, board loop",
    version="0.4.0",
)
package(
    "firmware",
    files=(
        "__init__.py",
        "auth.py",
        "codes.py",
        "hal.py",
        "journal.py",
        "kernel.py",
        "main.py",
        "protocol.py",
        "pump.py",
    ),
    base_path="..",
)
package("firmware", files=("kernel_sha.py",), base_path=_generated)
