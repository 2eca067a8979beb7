# A MicroPython manifest (docs.micropython.org, "MicroPython manifest files"): the production
# firmware, to freeze into a board's MicroPython image, e.g.
#     make -C ports/rp2 BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/firmware/manifest.py
# Frozen, the bytecode and its constants stay in flash instead of the heap (README, "Heap").
# The files are listed one by one: the simulation modules (simboard.py, simhal.py) are never
# frozen into a pump. The board still needs its root main.py (`blinpump flash` writes it):
#     from firmware import main
#     main.start()
# This file is not a module of the firmware: hil/build.py leaves it out of every build.
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
