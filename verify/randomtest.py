"""Random testing of a kernel with Hypothesis: the baseline the verifier is compared with.

A campaign runs random command sequences on the kernel module (CPython, imported from its
file) from `State()` and checks the same properties as the verifier (verify/properties.py)
on the concrete states after every step. Inputs are drawn from a domain-aware mix: the
label's boundary values (weights, BSA, durations, caps and the times around 4 h, 12 h,
3/7/14/28 days), values one off them, and arbitrary integers; long waits are a `tick`
repeated up to a day, or a `power_up` with a known or unknown outage.

`campaign(path, examples=N, seed=S)` generates N examples (Hypothesis, no shrinking, no
database) or stops at the first property that fails: the same (N, S) always draws the same
sequences, so the result is the same on any machine. `campaign(path, seconds=T)` keeps going
for about T seconds instead (the benchmarks compare it with the verifier's time); its example
count depends on the machine, so tests use `examples`.
"""
from __future__ import annotations

import random
import time
import zlib
from typing import Any

from .properties import PROPERTIES, RATE_UL_PER_H, Property, S, Step
from .replay import load_module
from .product import OBSERVER
from .relation import PREFIX, STATUS
from .subset import Kernel, load_kernel

# label boundary values and their neighbours
_WEIGHTS = [500, 5399, 5400, 5401, 20000, 44999, 45000, 45001, 70000, 300000]
_BSA = [500, 999, 6000, 6001, 18000, 18667, 18668, 35000]
_DURATIONS = [24, 48, 72, 96, 168]
_TIMES = [0, 1, 59, 60, 239, 240, 241, 719, 720, 721, 1439, 1440, 4319, 4320, 4321, 10079, 10080, 10081,
          20159, 20160, 20161, 40319, 40320]


def _int(rng: random.Random, values: list[int], lo: int = -5, hi: int = 1000000) -> int:
    r = rng.random()
    if r < 0.7:
        return rng.choice(values)
    if r < 0.85:
        return rng.choice(values) + rng.choice((-1, 1))
    return rng.randint(lo, hi)


def random_step(rng: random.Random, kernel: Kernel, patient_id: int = 7) -> tuple[str, dict[str, Any], int]:
    """(entry, args, repeat): one random command."""
    entries = kernel.entries
    weights = {"tick": 30, "start": 10, "bag": 10, "ack": 8, "stop": 4, "setup": 4, "reaction": 5,
               "resolved": 4, "power_up": 5, "remove_bag": 2, "ack_alarm": 2, "decide": 2, "overdose": 2,
               "flush": 1, "fault": 1, "clear_fault": 2}
    names = [e for e in entries]
    entry = rng.choices(names, [weights.get(e, 2) for e in names])[0]
    params = kernel.entry_params(entry)
    args: dict[str, Any] = {}
    repeat = 1
    for p in params:
        args[p] = _int(rng, [0, 1, 2, 3, 4, 5])
    if entry == "tick":
        repeat = rng.choice([1, 1, 1, 5, 60, 240, 720, 1440])
    elif entry == "setup":
        indication = _int(rng, [1, 2, 3])
        args.update(patient_id=_int(rng, [patient_id]), indication=indication,
                    weight_g=_int(rng, _WEIGHTS), bsa_cm2=_int(rng, _BSA),
                    course_cycles=_int(rng, [1, 4, 9] if indication == 3 else [0], -1, 10))
    elif entry == "bag":
        d = _int(rng, _DURATIONS, 0, 200)
        days = max(d // 24, 1)
        rate = _int(rng, [250, 750, 3000, 9000, 18000, 27000, 28000])
        flow = RATE_UL_PER_H.get(d, 1000)                 # EXT-rates: the label's table
        infused = flow * d
        volume = _int(rng, [infused, infused * 9 // 8, 10000, 240000, 1000000])
        per_day = max(flow * 24, 1)
        drug = rate * volume // per_day         # the bag's concentration gives `rate` a day (EXT-rates)
        args.update(patient_id=_int(rng, [patient_id]), drug_ng=_int(rng, [drug, drug - 1, drug + 1]),
                    volume_ul=volume, rate_ul_per_h=_int(rng, [flow], 0, 20000), duration_h=d,
                    preservative=_int(rng, [0 if d <= 48 else 1], -1, 2),
                    room_min=_int(rng, [0, 1, 60, 1440, 2880 - 60 * d, 5760 - 60 * d, 10080 - 60 * d]),
                    fridge_min=_int(rng, [0, 11520, 20160]))
    elif entry == "reaction":
        args.update(kind=_int(rng, [1, 2, 3, 4, 5], 0, 6), grade=_int(rng, [1, 2, 3, 4], 0, 5),
                    scale=_int(rng, [1, 1, 1, 2], 0, 3))
    elif entry == "resolved":
        args.update(kind=_int(rng, [1, 2, 3, 4, 5], 0, 6))
    elif entry == "cycle_decision":
        args.update(new_cycle=_int(rng, [0, 1], -1, 2))
    elif entry == "update_patient":
        args.update(weight_g=_int(rng, _WEIGHTS), bsa_cm2=_int(rng, _BSA))
    elif entry == "power_up":
        args.update(outage_min=_int(rng, [-1] + _TIMES, -2, 10 ** 7))
    elif entry == "ack":
        args.update(what=_int(rng, [1, 2], 0, 3))
    elif entry == "stop":
        args.update(reason=_int(rng, list(range(1, 12)), 0, 12))
    elif entry == "decide":
        args.update(discontinue=_int(rng, [0, 1], -1, 2))
    elif entry == "ack_alarm":
        args.update(bits=_int(rng, [0, 1, 8, 32, 64, 255], -1, 300))
    return entry, args, repeat


def snapshot(state: Any, names: list[str]) -> dict[str, int]:
    return {n: int(getattr(state, n)) for n in names}


def check_step(props: list[Property], pre: dict[str, int], post: dict[str, int], entry: str,
               args: dict[str, Any], ret: Any, invariant_fn: Any = None, state: Any = None,
               ranges: list[tuple[str, int, int]] | None = None) -> list[str]:
    """Property violations of one concrete step (ids with the failing checks)."""
    out = []
    st = Step(entry, args, int(ret) if ret is not None else None)
    for p in props:
        if p.special == "invariant":
            bad = [n for n, lo, hi in (ranges or []) if not lo <= post[n] <= hi]
            if bad or (invariant_fn is not None and not invariant_fn(state)):
                out.append("%s: %s" % (p.id, ", ".join(bad) or "invariant(s) false"))
            continue
        if p.special == "relation":
            from .relation import conjuncts
            bad = [text for text, v in conjuncts(post) if not v]
            if bad:
                out.append("%s: %s" % (p.id, bad[0]))
            continue
        if p.special:
            continue
        fails = p.failing(S(pre), S(post), st)
        if fails:
            out.append("%s: %s" % (p.id, fails[0]))
    return out


def run_sequence(mod: Any, kernel: Kernel, steps: list[tuple[str, dict[str, Any], int]],
                 props: list[Property]) -> tuple[list[str], int]:
    """Run steps from State(); returns (violations, index of the failing step)."""
    names = kernel.field_names
    ranges = [(f.name, f.lo, f.hi) for f in kernel.fields]
    inv = getattr(mod, "invariant", None)
    s = mod.State()
    # the label observer runs beside the kernel on the same inputs (verify/product.py)
    obs = load_module(OBSERVER) if any(p.product for p in props) else None
    o = obs.State() if obs is not None else None
    onames = [n for n in vars(o)] if o is not None else []

    def snap(ret_obs: Any) -> dict[str, int]:
        out = snapshot(s, names)
        if o is not None:
            out.update({PREFIX + n: int(getattr(o, n)) for n in onames})
            out[STATUS] = int(ret_obs)
        return out
    cur = snap(0)
    for i, (entry, args, repeat) in enumerate(steps):
        fn = getattr(mod, entry)
        plist = [args[p] for p in kernel.entry_params(entry)]
        for _ in range(repeat):
            try:
                ret = fn(s, *plist)
            except Exception as exc:  # a mutant may crash: that is a failure too
                return ["exception in %s: %s: %s" % (entry, type(exc).__name__, exc)], i
            ret_obs = getattr(obs, entry)(o, *plist) if obs is not None else 0
            nxt = snap(ret_obs)
            bad = check_step(props, cur, nxt, entry, args, ret, inv, s, ranges)
            if bad:
                return bad, i
            cur = nxt
    return [], -1


ROUND = 25     # examples per Hypothesis run; each run has its own seed, derived from `seed`


def campaign(path: str, seconds: float | None = None, seed: int = 0, max_len: int = 40,
             props: list[Property] | None = None, examples: int | None = None) -> dict[str, Any]:
    """Hypothesis-driven random testing of the kernel at `path`: `examples` examples
    (deterministic for a seed), or for about `seconds` (an upper bound, wall clock), whichever
    ends first; at least one of the two must be given."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    if seconds is None and examples is None:
        raise ValueError("campaign needs examples= (deterministic) or seconds=")

    kernel = load_kernel(path)
    mod = load_module(path)
    props = [p for p in (props or PROPERTIES) if p.special != "obligations"]
    deadline = time.time() + seconds if seconds is not None else None
    limit = examples if examples is not None else -1
    found: dict[str, Any] = {}
    examples_run = [0]

    class _Found(Exception):
        pass

    class _Timeout(Exception):
        pass

    def done() -> bool:
        return bool(found) or examples_run[0] == limit or (deadline is not None and time.time() > deadline)

    @settings(max_examples=ROUND, deadline=None, database=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.randoms(use_true_random=False), st.integers(min_value=1, max_value=max_len))
    def one(rng: random.Random, n: int) -> None:
        if examples_run[0] == limit or (deadline is not None and time.time() > deadline):
            raise _Timeout()  # draw nothing; Hypothesis replays it identically
        examples_run[0] += 1
        steps = []
        # most sequences start with a valid set-up, a bag and the acknowledgements
        if rng.random() < 0.8:
            indication = rng.choice([1, 2, 3])
            steps.append(("setup", {"patient_id": 7, "indication": indication,
                                    "weight_g": rng.choice(_WEIGHTS), "bsa_cm2": rng.choice(_BSA),
                                    "course_cycles": rng.choice([1, 4, 9]) if indication == 3 else 0}, 1))
        for _ in range(n):
            steps.append(random_step(rng, kernel))
        bad, idx = run_sequence(mod, kernel, steps, props)
        if bad:
            found.update(violations=bad, steps=steps[: idx + 1])
            raise _Found()

    t0 = time.time()
    run = 0
    while not done():
        # every run of ROUND examples has its own seed, a function of `seed` and the run number:
        # the same campaign draws the same sequences on every machine and in every process
        hypothesis_seed(zlib.crc32(b"%d/%d" % (seed, run)))(one)
        run += 1
        try:
            one()
        except Exception as exc:  # _Found or _Timeout, possibly wrapped by Hypothesis
            if found or isinstance(exc, _Timeout) or done():
                break
            raise
    return {"caught": bool(found), "seconds": time.time() - t0, "examples": examples_run[0],
            "violations": found.get("violations", []), "steps": found.get("steps", [])}
