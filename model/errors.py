"""The one error type of the model: it names the input field and the label clause it breaks."""
from __future__ import annotations


class ModelError(ValueError):
    """A rejected input. `str(err)` is one line naming the field and the clause."""

    def __init__(self, field: str, clause: str, message: str) -> None:
        self.field = field
        self.clause = clause
        # one line, whatever the caller passed: the CLI prints it as-is on stderr
        self.message = " ".join(message.split())
        super().__init__(str(self))

    def __str__(self) -> str:
        return "field=%s clause=%s: %s" % (self.field, self.clause, self.message)
