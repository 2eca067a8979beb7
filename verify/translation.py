"""Translation validation: the Z3 transition relation the verifier proves things about must be
the kernel that runs.

For (state, entry point, input) triples drawn from reachable states (random command sequences
from `State()`, verify/randomtest.random_step), the entry point is executed twice:
- on CPython, by the kernel module itself (the file the verifier read);
- symbolically, by verify/symexec.Translator on Z3 numerals (`z3.IntVal`), so every operator
  goes through its Z3 translation (`div`, `ite`, the bit-level `&` and `|`, the order's
  division), and each resulting term is reduced by `z3.simplify`.
Every field and the return value must agree. A disagreement is a translation bug: a proof would
then be about another program than the one on the board.

`python -m blinpump.verify.translation [N]` runs N triples (bench/verify_bench.py records the
count and the time; tests/test_verify_translation.py runs a sample).
"""
from __future__ import annotations

import random
import sys
import time
from pathlib import Path
from typing import Any

import z3

from .randomtest import random_step
from .replay import load_module
from .subset import Kernel, load_kernel
from .symexec import Translator

KERNEL = Path(__file__).resolve().parent.parent / "firmware" / "kernel.py"


def _num(term: Any) -> int | None:
    """The integer a fully reduced term stands for (booleans as 0/1), or None if not a numeral."""
    if isinstance(term, bool):
        return int(term)
    if isinstance(term, int):
        return term
    t = z3.simplify(term)
    if z3.is_int_value(t):
        return t.as_long()
    if z3.is_true(t):
        return 1
    if z3.is_false(t):
        return 0
    return None


def symbolic_step(tr: Translator, kernel: Kernel, entry: str, fields: dict[str, int],
                  args: dict[str, int]) -> tuple[dict[str, int | None], int | None]:
    """The entry point through the Z3 translation, on numerals: (fields after, return value)."""
    zf = {n: z3.IntVal(v) for n, v in fields.items()}
    za = {p: z3.IntVal(args[p]) for p in kernel.entry_params(entry)}
    res = tr.run(entry, zf, za)
    out = {n: _num(res.fields[n]) for n in kernel.field_names}
    return out, (None if res.ret is None else _num(res.ret))


def _therapy(rng: random.Random, mod: Any) -> list[tuple[str, dict[str, int], int]]:
    """A valid start of therapy, so that the sample reaches infusing states: set-up, a bag at the
    cap in force at the table rate (the bag's concentration chosen for it), both
    acknowledgements, start; then ticks follow from the random steps."""
    indication = rng.choice([1, 2, 3])
    weight_g, bsa_cm2 = rng.choice([(70000, 0), (45000, 0), (30000, 10000), (12000, 5500)])
    setup = {"patient_id": 7, "indication": indication, "weight_g": weight_g, "bsa_cm2": bsa_cm2,
             "course_cycles": 4 if indication == 3 else 0}
    trial = mod.State()                 # the cap in force after this set-up, the kernel's own
    mod.setup(trial, *setup.values())
    cap = trial.cap_ng_per_day
    hours = rng.choice([24, 48, 72, 96, 168])
    rate = mod._rate_ul_per_h(hours)
    volume = rate * hours * rng.choice([8, 9]) // 8          # with or without an overfill
    drug = cap * volume // (rate * 24)
    return [("setup", setup, 1),
            ("bag", {"patient_id": 7, "bag_id": 1, "drug_ng": drug, "volume_ul": volume, "rate_ul_per_h": rate,
                     "duration_h": hours, "preservative": 1 if hours >= 72 else 0, "room_min": 0,
                     "fridge_min": 0}, 1),
            ("ack", {"what": 1}, 1), ("ack", {"what": 2}, 1), ("start", {}, 1)]


def validate(triples: int = 1000, seed: int = 0, kernel_path: str | Path = KERNEL,
             max_len: int = 30, run_path: str | Path | None = None) -> dict[str, Any]:
    """Draw `triples` (state, entry, input) triples from random sequences (deterministic for a
    seed) and compare CPython with the Z3 translation on each. Returns counts and mismatches.
    `run_path` executes another file than the one translated (the tests use it to show that a
    difference is caught)."""
    kernel = load_kernel(kernel_path)
    mod = load_module(run_path if run_path is not None else kernel_path)
    tr = Translator(kernel)
    rng = random.Random(seed)
    names = kernel.field_names
    done = 0
    entries: dict[str, int] = {}
    mismatches: list[dict[str, Any]] = []
    running = 0                         # triples whose pre-state infuses
    t0 = time.perf_counter()
    while done < triples:
        s = mod.State()
        prefix = _therapy(rng, mod) if rng.random() < 0.8 else []
        for i in range(len(prefix) + rng.randint(1, max_len)):
            if done >= triples:
                break
            entry, args, repeat = prefix[i] if i < len(prefix) else random_step(rng, kernel)
            if entry == "tick":
                for _ in range(repeat - 1):         # reach later states; the last tick is compared
                    mod.tick(s)
            pre = {n: int(getattr(s, n)) for n in names}
            plist = [args[p] for p in kernel.entry_params(entry)]
            ret = getattr(mod, entry)(s, *plist)
            post = {n: int(getattr(s, n)) for n in names}
            sym_post, sym_ret = symbolic_step(tr, kernel, entry, pre, args)
            diff = [n for n in names if sym_post[n] != post[n]]
            if ret is not None and sym_ret != int(ret):
                diff.append("return value")
            if diff:
                mismatches.append({"entry": entry, "args": args, "pre": pre, "fields": diff[:8]})
            entries[entry] = entries.get(entry, 0) + 1
            running += pre["mode"] == 2
            done += 1
    return {"triples": done, "running_triples": running, "mismatches": len(mismatches),
            "first_mismatches": mismatches[:5],
            "entries": dict(sorted(entries.items())), "seed": seed,
            "seconds": round(time.perf_counter() - t0, 2), "runtime": "CPython vs the Z3 translation"}


# Runs under MicroPython: each line of DATA is "entry|args|pre-state fields"; prints the return
# value and the fields after, in the order of NAMES.
_MPY_SCRIPT = """
from firmware import kernel as k
NAMES = %(names)r
DATA = %(data)r
for line in DATA.split(";"):
    entry, args, pre = line.split("|")
    s = k.State()
    vals = pre.split(",")
    for i in range(len(NAMES)):
        setattr(s, NAMES[i], int(vals[i]))
    ints = [int(x) for x in args.split(",")] if args else []
    r = getattr(k, entry)(s, *ints)
    print("R", -999999 if r is None else r, ",".join([str(getattr(s, n)) for n in NAMES]))
"""


def cross_check_micropython(triples: int = 200, seed: int = 0, batch: int = 100,
                            run_path: str | Path | None = None) -> dict[str, Any]:
    """The same triples on CPython and on real MicroPython (the WebAssembly port, the .mpy files
    mpy-cross produced from firmware/): every field and the return value must agree. `run_path`
    runs another file on CPython (the tests use it to show that a difference is caught)."""
    from blinpump.hil import micropython
    kernel = load_kernel(KERNEL)
    mod = load_module(run_path if run_path is not None else KERNEL)
    names = list(kernel.field_names)
    rng = random.Random(seed)
    cases: list[tuple[str, list[int], list[int], list[int], int]] = []
    while len(cases) < triples:
        s = mod.State()
        prefix = _therapy(rng, mod) if rng.random() < 0.8 else []
        for i in range(len(prefix) + rng.randint(1, 20)):
            entry, args, repeat = prefix[i] if i < len(prefix) else random_step(rng, kernel)
            if entry == "tick":
                for _ in range(repeat - 1):
                    mod.tick(s)
            pre = [int(getattr(s, n)) for n in names]
            plist = [int(args[p]) for p in kernel.entry_params(entry)]
            ret = getattr(mod, entry)(s, *plist)
            cases.append((entry, plist, pre, [int(getattr(s, n)) for n in names],
                          -999999 if ret is None else int(ret)))
    cases = cases[:triples]
    mismatches = []
    t0 = time.perf_counter()
    for start in range(0, len(cases), batch):
        part = cases[start:start + batch]
        data = ";".join("%s|%s|%s" % (e, ",".join(map(str, a)), ",".join(map(str, pre))) for e, a, pre, _, _ in part)
        res = micropython.run_script(_MPY_SCRIPT % {"names": tuple(names), "data": data}, timeout=300)
        lines = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("R ")]
        if res.returncode != 0 or len(lines) != len(part):
            return {"triples": start, "mismatches": -1, "error": res.stdout[-400:]}
        for (entry, args, _, post, ret), (_, got_ret, got_fields) in zip(part, lines):
            got = [int(x) for x in got_fields.split(",")]
            diff = [names[i] for i in range(len(names)) if got[i] != post[i]]
            if int(got_ret) != ret:
                diff.append("return value")
            if diff:
                mismatches.append({"entry": entry, "args": args, "fields": diff[:8]})
    return {"triples": len(cases), "mismatches": len(mismatches), "first_mismatches": mismatches[:5],
            "seconds": round(time.perf_counter() - t0, 2), "runtime": "CPython vs MicroPython (WebAssembly port)"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    n = int(argv[0]) if argv else 1000
    r = validate(n)
    print("translation validation: %d triples, %d mismatches, %.1f s (%s)"
          % (r["triples"], r["mismatches"], r["seconds"], r["runtime"]))
    for m in r["first_mismatches"]:
        print("  %s %s: %s" % (m["entry"], m["args"], ", ".join(m["fields"])))
    return 1 if r["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
