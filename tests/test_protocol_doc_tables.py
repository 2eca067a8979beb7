"""docs/protocol.md is the contract a bench writes its client from: its tables of kernel status
codes and journal events must be the firmware's, so they cannot drift."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from blinpump.firmware import codes, journal, kernel
from blinpump.model import observer

DOC = Path(__file__).resolve().parent.parent / "docs" / "protocol.md"


def table_after(heading: str) -> list[list[str]]:
    """The rows (cells stripped) of the first Markdown table whose header row starts with `heading`."""
    lines = DOC.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(heading):
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip("|").split("|")])
            return rows
    raise AssertionError("docs/protocol.md has no table headed %r" % heading)


def test_L2_5_errors_the_kernel_status_table_is_the_firmwares() -> None:
    rows = table_after("| code | name | clauses |")
    doc = {int(r[0]): (r[1], "" if r[2] == "-" else r[2], r[3]) for r in rows}
    assert doc == {code: (name, clause, msg.replace("|", "/")) for code, (name, clause, msg) in codes.STATUS.items()}


def test_every_journal_event_code_is_in_the_events_table_under_its_name() -> None:
    rows = table_after("| code | event |")
    doc = {int(r[0]): re.match(r"[A-Z_]+", r[1]).group(0) for r in rows}   # type: ignore[union-attr]
    firmware = {v: n[3:] for n, v in vars(journal).items() if n.startswith("EV_") and isinstance(v, int)}
    assert doc == firmware


def _codes_table(prefix: str) -> dict[int, str]:
    lines = DOC.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("#### ") and "(`%s*`)" % prefix in line:
            head = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("| value | name |"))
            rows = []
            for row in lines[head + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip("|").split("|")])
            return {int(r[0]): r[1] for r in rows}
    raise AssertionError("docs/protocol.md has no table of `%s*`" % prefix)


@pytest.mark.parametrize("prefix", ["MODE_", "PHASE_", "IND_", "RX_", "SCALE_", "ACK_", "STOP_", "AL_"])
def test_every_code_table_is_the_kernels_constants(prefix: str) -> None:
    firmware = {v: n[len(prefix):] for n, v in vars(kernel).items() if n.startswith(prefix) and isinstance(v, int)}
    assert _codes_table(prefix) == firmware


def test_the_label_observer_reports_with_the_documented_codes() -> None:
    """The observer (model/observer.py) names the protocol's STOP reasons and alarm bits itself;
    they are the documented ones, so the proof ties the kernel to the document."""
    stops, alarms = _codes_table("STOP_"), _codes_table("AL_")
    for name, doc in (("HALT_OVERDOSE", "OVERDOSE"), ("HALT_BAG_END", "BAG_END"), ("HALT_BAG_EXPIRED", "BAG_EXPIRED"),
                      ("HALT_CAP", "CAP"), ("HALT_POWER", "POWER"), ("HALT_FAULT", "FAULT"),
                      ("STOP_FOR_REACTION", "REACTION")):
        assert stops[getattr(observer, name)] == doc
    for name, doc in (("BIT_CAP", "CAP"), ("BIT_BAG_END", "BAG_END"), ("BIT_BAG_EXPIRED", "BAG_EXPIRED"),
                      ("BIT_POWER", "POWER"), ("BIT_FAULT", "FAULT"), ("BIT_REINIT", "REINIT"),
                      ("BIT_DISCONTINUED", "LOCKED")):
        assert alarms[getattr(observer, name)] == doc


def test_the_status_table_names_every_field_in_the_order_sent() -> None:
    from blinpump.firmware import simhal
    from blinpump.firmware.pump import Controller
    rows = table_after("| # | field | unit | meaning |")
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert [r[1] for r in rows] == list(Controller(simhal.MemStorage(journal.TOTAL_BYTES), simhal.SimClock(),
                                                     simhal.SimMotor()).status())
    assert all(r[2] and r[3] for r in rows)          # every field has its unit and meaning


def test_the_hello_reply_vector_has_every_integer_a_board_sends() -> None:
    from blinpump.firmware import protocol
    line = next(x for x in DOC.read_text().splitlines() if x.startswith("hello-reply "))
    ints = [int(v) for v in line.split()[4].strip("[]").split(",")]
    sent = 1 + len(protocol.HELLO_FIELDS) + 8 + len(protocol.HELLO_AUTH_FIELDS) + len(protocol.HELLO_STATE_FIELDS)
    assert len(ints) == sent


def test_EXT_pump_the_boards_own_status_code_is_in_the_table_and_no_kernel_code() -> None:
    from blinpump.firmware import kernel, pump
    kernel_codes = {v for n, v in vars(kernel).items() if n.startswith("E_")}
    assert pump.E_LINE_ALARM not in kernel_codes
    assert codes.name(pump.E_LINE_ALARM) == "E_LINE_ALARM" and codes.clause(pump.E_LINE_ALARM) == "EXT-pump"
