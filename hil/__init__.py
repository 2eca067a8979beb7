"""Hardware-in-the-loop: MicroPython build and runtime, serial client, simulated board, scenario runner."""
