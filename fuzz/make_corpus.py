"""Write the seed corpus of fuzz/fuzz_board.py into fuzz/corpus/ (deterministic: rerun to regenerate).

    .venv/bin/python fuzz/make_corpus.py            # (re)write fuzz/corpus/, remove stale seeds
    .venv/bin/python fuzz/make_corpus.py --check    # exit 1 if fuzz/corpus/ differs from what it writes

Seeds, each a small file in the harness's input format (first byte: 0 raw, 1 structured):
  raw-vector-*      every frame of docs/protocol.md's test vectors (frame, reject and exchange vectors)
  raw-script-*      the line bytes of a host starting an infusion with signed frames (counters from 1)
  raw-garbage-*     noise from a fixed PRNG seed, floods without flags, escapes, lone flags, a frame
                    with N = 255, a 267-byte body, a cut frame
  structured-cmd-*  HELLO, then one correctly signed frame of each command the harness knows
  structured-*      an infusion from HELLO to START; forged, replayed, flipped, cut and resent frames;
                    int32 extremes; unknown ids; the simulation commands (power cuts, motor failure)
"""
from __future__ import annotations

import argparse
import random
import re
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from blinpump.firmware import kernel as k  # noqa: E402
from blinpump.firmware import protocol as P  # noqa: E402
from blinpump.firmware import pump, simboard  # noqa: E402
import atheris  # noqa: E402

from fuzz.fuzz_board import (COMMANDS, K_CUT, K_FLIP, K_PLAIN, K_RAW, K_RESEND, K_SIGNED, LAST, MODE_RAW,  # noqa: E402
                             PID, SIM_KEYS, FramePlan, encode_plans, read_plans, sealed, stuffed)
from blinpump.hil import auth as host_auth  # noqa: E402
from blinpump.hil import client as C  # noqa: E402

CORPUS = HERE / "corpus"
DOC = REPO / "docs" / "protocol.md"
PRNG_SEED = 20261121

HELLO = FramePlan(K_PLAIN, P.CMD_HELLO, (P.VERSION,))
INFUSION = [
    FramePlan(K_SIGNED, pump.CMD_SETUP, (PID, k.IND_MRD, 70000, 0, 0)),
    FramePlan(K_SIGNED, pump.CMD_BAG, (PID, 1, 63000, 270000, 5000, 48, 0, 0, 0)),
    FramePlan(K_SIGNED, pump.CMD_ACK, (k.ACK_PREMED,)),
    FramePlan(K_SIGNED, pump.CMD_ACK, (k.ACK_SUPERVISION,)),
    FramePlan(K_SIGNED, pump.CMD_START, ()),
]
# one typical argument list per command (the first plausible value of each argument)
TYPICAL = {
    pump.CMD_SETUP: (PID, k.IND_MRD, 70000, 0, 0), pump.CMD_BAG: (PID, 1, 63000, 270000, 5000, 48, 0, 0, 0),
    pump.CMD_STOP: (k.STOP_CLINICIAN,), pump.CMD_ACK: (k.ACK_PREMED,), pump.CMD_ACK_ALARM: (255,),
    pump.CMD_REACTION: (k.RX_CRS, 3, k.SCALE_CTCAE), pump.CMD_RESOLVED: (k.RX_CRS,), pump.CMD_DECIDE: (1,),
    pump.CMD_CYCLE_DECISION: (0,), pump.CMD_UPDATE_PATIENT: (44000, 13000), P.CMD_ARCHIVE: (0,),
    P.CMD_HELLO: (P.VERSION,), P.CMD_EVENTS: (0,),
    simboard.CMD_ADVANCE: (60,), simboard.CMD_FAULT: (simboard.FAULT_OCCLUSION, 0),
}
STOP = FramePlan(K_SIGNED, pump.CMD_STOP, (k.STOP_CLINICIAN,))


def doc_vectors() -> dict[str, bytes]:
    """Every frame of docs/protocol.md's test vectors, by name (requests only, for exchanges)."""
    text = DOC.read_text()
    out: dict[str, bytes] = {}
    for block, col in (("frame-vectors", 5), ("reject-vectors", 1), ("exchange-vectors", 1)):
        m = re.search(r"```%s\n(.*?)```" % block, text, re.S)
        if not m:
            raise SystemExit("make_corpus: docs/protocol.md has no ```%s block" % block)
        for line in m.group(1).splitlines():
            fields = line.split()
            if fields and not line.startswith("#"):
                data = bytes.fromhex(fields[col])
                if data not in out.values():
                    out[fields[0]] = data
    return out


def signed_frame(cmd: int, args: tuple[int, ...], seq: int, counter: int) -> bytes:
    role = host_auth.role_for(cmd, SIM_KEYS) or 3
    return C.encode_signed(SIM_KEYS[role], seq, cmd, list(args), role, counter)


def raw_seeds() -> dict[str, bytes]:
    seeds = {"raw-vector-" + name: data for name, data in doc_vectors().items()}
    script = C.encode_frame(P.T_REQUEST, 1, P.CMD_HELLO, [P.VERSION])
    for i, plan in enumerate(INFUSION):
        script += signed_frame(plan.cmd, plan.args, 2 + i, 1 + i)
    seeds["raw-script-infusion"] = script
    seeds["raw-script-stop-status"] = signed_frame(pump.CMD_STOP, (k.STOP_CLINICIAN,), 40, 100) + \
        signed_frame(P.CMD_STATUS, (), 41, 100)
    rng = random.Random(PRNG_SEED)
    for n in (16, 200, 600):
        seeds["raw-garbage-random-%d" % n] = bytes(rng.getrandbits(8) for _ in range(n))
    seeds["raw-garbage-flood-no-flag"] = b"\x55" * 300
    seeds["raw-garbage-escapes"] = b"\x7d" * 40 + b"\x7e\x7d\x7e"
    seeds["raw-garbage-flags"] = b"\x7e" * 16
    seeds["raw-garbage-all-bytes"] = bytes(range(256))
    seeds["raw-garbage-n255"] = stuffed(sealed(struct.pack("<BBHBB", P.VERSION, 1, 7, 4, 255) + bytes(4 * 255)))[:600]
    seeds["raw-garbage-body-267"] = stuffed(sealed(bytes(P.MAX_BODY_BYTES - 3)))
    seeds["raw-garbage-cut-frame"] = signed_frame(pump.CMD_STOP, (k.STOP_CLINICIAN,), 9, 9)[:25] + \
        C.encode_frame(P.T_REQUEST, 10, P.CMD_STATUS, [])
    return {name: bytes([MODE_RAW]) + data for name, data in seeds.items()}


def structured_plans() -> dict[str, list[FramePlan]]:
    plans: dict[str, list[FramePlan]] = {}
    for cmd in COMMANDS:
        kind = K_PLAIN if cmd == P.CMD_HELLO else K_SIGNED
        plans["structured-cmd-%d" % cmd] = [HELLO, FramePlan(kind, cmd, TYPICAL.get(cmd, ()))]
    plans["structured-cmd-51-heap"] = [HELLO, FramePlan(K_SIGNED, simboard.CMD_HEAP, ())]
    plans["structured-infusion"] = [HELLO] + INFUSION + [FramePlan(K_SIGNED, simboard.CMD_ADVANCE, (60,)),
                                                         FramePlan(K_SIGNED, P.CMD_STATUS, ())]
    plans["structured-stop-start-reaction"] = [HELLO, STOP, FramePlan(K_SIGNED, pump.CMD_START, ()),
                                               FramePlan(K_SIGNED, pump.CMD_REACTION, (k.RX_OTHER, 4, k.SCALE_CTCAE)),
                                               FramePlan(K_SIGNED, pump.CMD_DECIDE, (0,)),
                                               FramePlan(K_SIGNED, pump.CMD_RESOLVED, (k.RX_OTHER,))]
    plans["structured-wrong-role"] = [HELLO, STOP._replace(role=3), STOP._replace(role=1)]
    plans["structured-no-such-role"] = [HELLO, STOP._replace(role=7), STOP._replace(role=P.INT_MIN)]
    plans["structured-replayed-counter"] = [HELLO, STOP, STOP._replace(counter=LAST)]
    plans["structured-arbitrary-counter"] = [HELLO, STOP._replace(counter=-1), STOP._replace(counter=P.INT_MAX)]
    plans["structured-retry-same-seq"] = [HELLO, STOP, FramePlan(K_RESEND, pos=7),
                                          FramePlan(K_SIGNED, pump.CMD_START, (), seq=LAST)]
    plans["structured-plain-therapy"] = [HELLO, FramePlan(K_PLAIN, pump.CMD_STOP, (k.STOP_CLINICIAN,)),
                                         FramePlan(K_PLAIN, P.CMD_STATUS, ())]
    plans["structured-flip-fixed-crc"] = [HELLO, STOP._replace(kind=K_FLIP, pos=8 * 8 + 1, fix_crc=1)]
    plans["structured-flip-bad-crc"] = [HELLO, STOP._replace(kind=K_FLIP, pos=8 * 3)]
    plans["structured-flip-version"] = [HELLO, STOP._replace(kind=K_FLIP, pos=1, fix_crc=1)]
    plans["structured-cut"] = [HELLO, STOP._replace(kind=K_CUT, pos=20), FramePlan(K_RESEND, pos=0)]
    plans["structured-raw-chunk"] = [HELLO, FramePlan(K_RAW, raw=b"\x7e\x01\x01\x00\x00\x21\x00"), STOP]
    plans["structured-wrong-arity"] = [HELLO, FramePlan(K_SIGNED, pump.CMD_STOP, ()),
                                       FramePlan(K_SIGNED, P.CMD_HELLO, (1, 2))]
    plans["structured-unknown-ids"] = [HELLO, FramePlan(K_SIGNED, 0, ()), FramePlan(K_SIGNED, 77, (1,)),
                                       FramePlan(K_PLAIN, 255, ())]
    plans["structured-int32-extremes"] = [HELLO] + INFUSION[:2] + [
        FramePlan(K_SIGNED, pump.CMD_SETUP, (P.INT_MAX, P.INT_MIN, P.INT_MAX, P.INT_MIN)),
        FramePlan(K_SIGNED, pump.CMD_BAG, (PID, P.INT_MAX, P.INT_MAX, P.INT_MIN, 48, P.INT_MAX, P.INT_MIN, P.INT_MAX)),
        FramePlan(K_SIGNED, pump.CMD_ACK_ALARM, (P.INT_MIN,)),
        FramePlan(K_SIGNED, simboard.CMD_ADVANCE, (P.INT_MIN,))]
    plans["structured-events-negative-seq"] = [HELLO, FramePlan(K_SIGNED, P.CMD_EVENTS, (-1,)),
                                               FramePlan(K_SIGNED, P.CMD_EVENTS, (P.INT_MIN,))]
    plans["structured-hello-wrong-version"] = [FramePlan(K_PLAIN, P.CMD_HELLO, (2,)), STOP]
    plans["structured-power-cut"] = [HELLO] + INFUSION + [
        FramePlan(K_SIGNED, simboard.CMD_FAULT, (simboard.FAULT_POWER_CUT, 30)), STOP]
    plans["structured-power-cut-in-write"] = [HELLO, FramePlan(K_SIGNED, simboard.CMD_FAULT,
                                                               (simboard.FAULT_POWER_CUT_WRITE, 10)), STOP, HELLO]
    plans["structured-motor-failure"] = [HELLO] + INFUSION[:4] + [
        FramePlan(K_SIGNED, simboard.CMD_FAULT, (simboard.FAULT_MOTOR, 1)),
        FramePlan(K_SIGNED, pump.CMD_START, ()), FramePlan(K_SIGNED, simboard.CMD_FAULT, (simboard.FAULT_MOTOR, 0))]
    plans["structured-reset"] = [HELLO, FramePlan(K_SIGNED, simboard.CMD_RESET, ()), STOP]
    plans["structured-bag-edges"] = [HELLO, INFUSION[0]] + [
        FramePlan(K_SIGNED, pump.CMD_BAG, (PID, 1, drug, vol, dur, pres, 0, 0))
        for drug, vol, dur, pres in ((196000, 1000000, 168, 1), (28001, 240000, 24, 0), (56000, 9999, 48, 0),
                                     (63000, 240000, 72, 1), (56000, 240000, 25, 0))]
    return plans


def build_corpus() -> dict[str, bytes]:
    """File name -> content of every seed."""
    seeds = raw_seeds()
    for name, plans in structured_plans().items():
        seeds[name] = encode_plans(plans)
        if read_plans(atheris.FuzzedDataProvider(seeds[name][1:])) != plans:
            raise AssertionError("%s: the harness would not read back the frames this seed is for" % name)
    return seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare fuzz/corpus/ with the seeds, write nothing")
    args = ap.parse_args(argv)
    seeds = build_corpus()
    on_disk = {p.name: p.read_bytes() for p in CORPUS.iterdir() if p.is_file()} if CORPUS.is_dir() else {}
    if args.check:
        if on_disk != seeds:
            print("make_corpus: fuzz/corpus/ is out of date (missing %s, stale %s, changed %s)" % (
                sorted(set(seeds) - set(on_disk)), sorted(set(on_disk) - set(seeds)),
                sorted(n for n in seeds if n in on_disk and on_disk[n] != seeds[n])), file=sys.stderr)
            return 1
        print("make_corpus: fuzz/corpus/ is up to date (%d seeds)" % len(seeds))
        return 0
    CORPUS.mkdir(exist_ok=True)
    for name in set(on_disk) - set(seeds):
        (CORPUS / name).unlink()
    for name, data in seeds.items():
        (CORPUS / name).write_bytes(data)
    print("make_corpus: %d seeds, %d bytes in fuzz/corpus/" % (len(seeds), sum(map(len, seeds.values()))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
