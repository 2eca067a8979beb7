"""docs/protocol.md is the contract a bench writes its client from: its tables of kernel status
codes and journal events must be the firmware's, so they cannot drift."""
from __future__ import annotations

import re
from pathlib import Path

from blinpump.firmware import codes, journal

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
