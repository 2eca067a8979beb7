#!/usr/bin/env node
// The simulated pump under real MicroPython: the official WebAssembly port under Node.js.
//
// usage: node hil/mpy_board.mjs --root DIR [--heap BYTES]
//
// DIR (build/mpy, compiled by hil/build.py) is copied into the interpreter's filesystem at /,
// so the .mpy files a board would get are what runs. Then firmware.simboard builds the board
// (Board + simulated plant) and this bridge moves bytes:
//   stdin  (link bytes from the host)  -> simboard.bridge_feed(hex) -> stdout (link bytes to the host)
// Bytes cross into MicroPython as hex text, so nothing is ever translated (no \n -> \r\n) on
// the binary link. stdout carries nothing but link bytes: the interpreter's own output (print,
// tracebacks) goes to stderr, and "mpy_board: ready" on stderr says the boot banner has been sent.
// Exit: 0 when stdin closes; 1 if the board raised; 2 bad usage; 3 runtime missing.

import fs from "node:fs";
import path from "node:path";
import { copyTree } from "./mpy_fs.mjs";

const PACKAGE = "@micropython/micropython-webassembly-pyscript";

function parseArgs(argv) {
    const cfg = { root: null, heap: null };
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--root" && i + 1 < argv.length) cfg.root = argv[++i];
        else if (argv[i] === "--heap" && i + 1 < argv.length) cfg.heap = parseInt(argv[++i], 10);
        else {
            process.stderr.write("usage: node hil/mpy_board.mjs --root DIR [--heap BYTES]\n");
            process.exit(2);
        }
    }
    if (!cfg.root || !fs.existsSync(cfg.root)) {
        process.stderr.write(`mpy_board: --root ${cfg.root} is not a directory (blinpump build)\n`);
        process.exit(2);
    }
    return cfg;
}


async function main() {
    const cfg = parseArgs(process.argv.slice(2));
    let loadMicroPython;
    try {
        ({ loadMicroPython } = await import(PACKAGE));
    } catch (err) {
        process.stderr.write(`mpy_board: cannot load ${PACKAGE}: run npm ci\n`);
        return 3;
    }
    const log = (bytes) => process.stderr.write(Buffer.from(bytes));
    const options = { stdout: log, stderr: log, linebuffer: false };
    if (cfg.heap) options.heapsize = cfg.heap;
    const mp = await loadMicroPython(options);
    copyTree(mp.FS, path.resolve(cfg.root), "/");
    mp.runPython("import os, sys\nos.chdir('/')\nsys.path[:] = ['', '.frozen', '/lib']\n");
    const sim = mp.pyimport("firmware.simboard");
    const send = (hex) => { if (hex.length) process.stdout.write(Buffer.from(hex, "hex")); };
    send(sim.bridge_start());
    process.stderr.write("mpy_board: ready\n");
    return await new Promise((resolve) => {
        process.stdin.on("data", (chunk) => {
            try {
                send(sim.bridge_feed(chunk.toString("hex")));
            } catch (e) {
                process.stderr.write(`mpy_board: ${e && e.message ? e.message : e}\n`);
                resolve(1);
            }
        });
        process.stdin.on("end", () => resolve(0));
    });
}

process.exitCode = await main();
process.exit();
