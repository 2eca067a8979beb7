#!/usr/bin/env node
// Run code under real MicroPython: the official WebAssembly port (npm package
// @micropython/micropython-webassembly-pyscript, installed by `npm ci`) under Node.js.
//
// usage: node hil/mpy_runner.mjs --root DIR [--heap BYTES] MODE
//   MODE is one of
//     --module NAME        import NAME (e.g. firmware.main), like a board's boot does
//     --script FILE        run FILE as __main__ (a line "#@phase" splits it into parts run
//                          one after another in separate calls, sharing their globals)
//     --unittest FILE...   run the unittest TestCases of each FILE with MicroPython's unittest
//
// The --root tree (normally build/mpy, the mpy-cross output of hil/build.py) is copied into
// the interpreter's in-memory filesystem at /, so /firmware/*.mpy is what gets imported.
// --script/--unittest files, and the other .py files of their directories (helpers they may
// import; conftest.py excepted), are copied to /tests/. sys.path is ['/tests', '', '.frozen',
// '/lib'] with the current directory '/', as on a board plus the test directory.
//
// Output: Python's stdout goes to stdout, its stderr to stderr, in order, partial last lines
// included. --unittest ends with two lines, `K skipped` and then exactly `N passed, M failed`.
// Exit status: 0 on success; 1 on an uncaught Python exception or any failed, erroring or
// unimportable test module; n for SystemExit(n); 2 for bad usage; 3 if the runtime is missing.
// --heap sets the initial GC heap; note that this port grows its heap on demand, so it does
// not emulate a small board: measure heap with gc.mem_alloc() instead.

import fs from "node:fs";
import path from "node:path";
import { copyTree, mkdirs } from "./mpy_fs.mjs";

const PACKAGE = "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
    if (msg) process.stderr.write(`mpy_runner: ${msg}\n`);
    process.stderr.write(
        "usage: node hil/mpy_runner.mjs --root DIR [--heap BYTES] " +
        "(--module NAME | --script FILE | --unittest FILE...)\n");
    process.exit(2);
}

function parseBytes(text) {
    const m = /^(\d+)([kKmM]?)$/.exec(text || "");
    if (!m) usage(`bad --heap value: ${text}`);
    const mult = { "": 1, k: 1024, m: 1024 * 1024 }[m[2].toLowerCase()];
    return parseInt(m[1], 10) * mult;
}

function parseArgs(argv) {
    const cfg = { root: null, heap: null, mode: null, module: null, files: [] };
    const setMode = (mode) => {
        if (cfg.mode) usage("give only one of --module, --script, --unittest");
        cfg.mode = mode;
    };
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        const value = () => {
            if (i + 1 >= argv.length) usage(`${a} needs a value`);
            return argv[++i];
        };
        if (a === "--root") cfg.root = value();
        else if (a === "--heap") cfg.heap = parseBytes(value());
        else if (a === "--module") { setMode("module"); cfg.module = value(); }
        else if (a === "--script") { setMode("script"); cfg.files = [value()]; }
        else if (a === "--unittest") {
            setMode("unittest");
            while (i + 1 < argv.length && !argv[i + 1].startsWith("--")) cfg.files.push(argv[++i]);
            if (cfg.files.length === 0) usage("--unittest needs at least one file");
        }
        else if (a === "-h" || a === "--help") usage();
        else usage(`unknown argument: ${a}`);
    }
    if (!cfg.root) usage("--root is required");
    if (!cfg.mode) usage("give one of --module, --script, --unittest");
    if (!fs.existsSync(cfg.root) || !fs.statSync(cfg.root).isDirectory())
        usage(`--root ${cfg.root} is not a directory (build it: blinpump build)`);
    for (const f of cfg.files)
        if (!fs.existsSync(f) || !fs.statSync(f).isFile()) usage(`no such file: ${f}`);
    return cfg;
}

// Byte-wise output from the interpreter, written out a line at a time. Before one stream
// writes, the other is flushed, so stdout and stderr keep their order; flushAll() at exit
// writes partial last lines.
class Out {
    constructor(stream) { this.stream = stream; this.buf = []; this.other = null; }
    put(bytes) {
        if (this.other) this.other.flush();
        for (const c of bytes) {
            this.buf.push(c);
            if (c === 10) this.flush();
        }
    }
    flush() {
        if (this.buf.length) {
            this.stream.write(Buffer.from(this.buf));
            this.buf = [];
        }
    }
}


// Test files and their sibling helper modules go to /tests; basenames must be unique.
function copyTests(FS, files) {
    mkdirs(FS, "/tests");
    const placed = new Map();
    const place = (file) => {
        const base = path.basename(file);
        const full = path.resolve(file);
        if (placed.has(base) && placed.get(base) !== full) {
            throw new Error(`two files named ${base}: ${placed.get(base)} and ${full}`);
        }
        placed.set(base, full);
        FS.writeFile("/tests/" + base, fs.readFileSync(full));
    };
    for (const file of files) {                     // the files asked for win over siblings
        place(file);
    }
    for (const dir of new Set(files.map((f) => path.dirname(path.resolve(f))))) {
        for (const name of fs.readdirSync(dir)) {
            if (!name.endsWith(".py") || name === "conftest.py" || placed.has(name)) continue;
            if (fs.statSync(path.join(dir, name)).isFile()) place(path.join(dir, name));
        }
    }
    return files.map((f) => "/tests/" + path.basename(f));
}

// Runs inside MicroPython. Everything is caught here, so the interpreter reports its own
// tracebacks and the runner gets a plain exit status back.
const DRIVER = String.raw`
def _bp_driver(cfg_json):
    import io, json, os, sys
    cfg = json.loads(cfg_json)
    os.chdir("/")
    sys.path[:] = ["/tests", "", ".frozen", "/lib"]

    def print_exc(exc, stream):
        # A traceback without this driver's own frames (it runs as "<stdin>").
        buf = io.StringIO()
        sys.print_exception(exc, buf)
        for line in buf.getvalue().split("\n"):
            if line and 'File "<stdin>"' not in line:
                stream.write(line + "\n")

    def exit_code(exc):
        code = exc.args[0] if exc.args else None
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1

    def guarded(fn):
        try:
            fn()
            return 0
        except SystemExit as exc:
            return exit_code(exc)
        except BaseException as exc:
            print_exc(exc, sys.stderr)
            return 1

    if cfg["mode"] == "module":
        return guarded(lambda: __import__(cfg["module"]))

    if cfg["mode"] == "script":
        script = cfg["paths"][0]
        phase = cfg.get("phase", 0)

        def run():
            global _bp_main
            with open(script) as f:
                source = f.read()
            if phase == 0:
                _bp_main = {"__name__": "__main__", "__file__": script}
            # a line "#@phase" splits the script; each part runs in its own call from Node,
            # because this port frees garbage only between calls (its GC scans the C stack)
            part = source.split("\n#@phase\n")[phase]
            exec(compile(part, script, "exec"), _bp_main)
        return guarded(run)

    import unittest
    result = unittest.TestResult()
    broken = 0
    for p in cfg["paths"]:
        name = p.rsplit("/", 1)[-1][:-3]
        print("== " + cfg["shown"][p])
        try:
            module = __import__(name)
        except BaseException as exc:
            print("ERROR: cannot import " + name)
            print_exc(exc, sys.stdout)
            broken += 1
            continue
        suite = unittest.TestSuite(name)
        suite._load_module(module)
        try:
            suite.run(result)
        except BaseException as exc:
            # MicroPython's unittest lets exceptions from setUp/tearDown(Class) escape.
            print(" ERROR: " + name + " aborted")
            print_exc(exc, sys.stdout)
            broken += 1
    result.printErrors()
    print("-" * 70)
    print("Ran %d tests" % result.testsRun)
    failed = result.failuresNum + result.errorsNum + broken
    passed = result.testsRun - result.failuresNum - result.errorsNum - result.skippedNum
    print("%d skipped" % result.skippedNum)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0
`;

async function main() {
    const cfg = parseArgs(process.argv.slice(2));
    let loadMicroPython;
    try {
        ({ loadMicroPython } = await import(PACKAGE));
    } catch (err) {
        process.stderr.write(
            `mpy_runner: cannot load ${PACKAGE} (${err.code || err.message}).\n` +
            "Install the MicroPython runtime from the repository root with: npm ci\n");
        return 3;
    }
    const out = new Out(process.stdout);
    const err = new Out(process.stderr);
    out.other = err;
    err.other = out;
    const options = { stdout: (b) => out.put(b), stderr: (b) => err.put(b), linebuffer: false };
    if (cfg.heap) options.heapsize = cfg.heap;
    try {
        const mp = await loadMicroPython(options);
        copyTree(mp.FS, path.resolve(cfg.root), "/");
        const paths = cfg.files.length ? copyTests(mp.FS, cfg.files) : [];
        const shown = {};
        paths.forEach((p, i) => { shown[p] = cfg.files[i]; });
        mp.runPython(DRIVER);
        const driver = mp.globals.get("_bp_driver");
        let phases = 1;
        if (cfg.mode === "script") {
            phases = fs.readFileSync(cfg.files[0], "utf8").split("\n#@phase\n").length;
        }
        let rc = 0;
        for (let phase = 0; phase < phases && rc === 0; phase++) {
            rc = driver(JSON.stringify({ mode: cfg.mode, module: cfg.module, paths, shown, phase }));
            if (typeof rc !== "number") rc = 1;
        }
        return rc;
    } catch (e) {
        // A failure of the runner or of the WebAssembly machine itself (abort, stack overflow).
        out.flush();
        err.flush();
        process.stderr.write(`mpy_runner: ${e && e.name === "PythonError" ? e.message : (e && e.stack) || e}\n`);
        return 1;
    } finally {
        out.flush();
        err.flush();
    }
}

process.exitCode = await main();
