"""The command line's argument parser: argparse, with an option given twice refused.

argparse keeps the last of two values silently (`flash --port A --port B` flashes B); a
safety tool refuses instead, naming the option (exit 2). Options that collect their values
(`bench --port` once per board: action "append") may repeat.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

_REPEATABLE = (argparse._AppendAction, argparse._AppendConstAction, argparse._CountAction,
               argparse._HelpAction, argparse._VersionAction)


class Parser(argparse.ArgumentParser):
    def parse_known_args(self, args: Sequence[str] | None = None,      # type: ignore[override]
                         namespace: argparse.Namespace | None = None) -> tuple[argparse.Namespace, list[str]]:
        argv = list(sys.argv[1:] if args is None else args)
        self._refuse_repeats(argv)
        return super().parse_known_args(argv, namespace)

    def _refuse_repeats(self, argv: list[str]) -> None:
        seen: dict[str, str] = {}
        for word in argv:
            if word == "--":
                break
            if not word.startswith("--"):
                continue
            name = word.split("=", 1)[0]
            action: Any = self._option_string_actions.get(name)
            if action is None or isinstance(action, _REPEATABLE):
                continue
            if action.dest in seen:
                self.error("argument %s: given more than once (%s, then %s); give it once"
                           % ("/".join(action.option_strings), seen[action.dest], name))
            seen[action.dest] = name
