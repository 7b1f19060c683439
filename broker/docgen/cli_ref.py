"""The command line's reference, walked from the `wasi-map` argparse parser.

Nothing here knows the commands or options: whatever `broker.cli.build_parser`
builds is what the page lists, so a new option only needs the page regenerated.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator


def parser() -> argparse.ArgumentParser:
    from ..cli import build_parser  # the CLI imports the whole broker: only when asked

    return build_parser()


def _subcommands(p: argparse.ArgumentParser) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of every subcommand, in the order they were added."""
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, helps.get(name, ""), sub


def _arguments(p: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in p._actions if not isinstance(a, argparse._SubParsersAction)]


def _value(a: argparse.Action) -> str:
    """What follows the option on the command line ("" for a flag)."""
    if a.nargs == 0:
        return ""
    if a.choices is not None and a.metavar is None:
        return "{" + ",".join(str(c) for c in a.choices) + "}"
    name = (
        a.metavar
        if isinstance(a.metavar, str)
        else (a.dest.upper() if a.option_strings else a.dest)
    )
    if a.nargs in ("*", "+") and " " not in name:
        return f"{name} ..." if a.nargs == "+" else f"[{name} ...]"
    if a.nargs == "?":
        return f"[{name}]"
    return name


def _usage_part(a: argparse.Action) -> str:
    if not a.option_strings:
        return _value(a)
    value = _value(a)
    text = a.option_strings[-1] if a.option_strings[-1].startswith("--") else a.option_strings[0]
    text = f"{text} {value}" if value else text
    return text if a.required else f"[{text}]"


def usage(prog: str, p: argparse.ArgumentParser) -> str:
    """A usage line that does not depend on the terminal's width."""
    parts = [_usage_part(a) for a in _arguments(p) if not isinstance(a, argparse._HelpAction)]
    if any(True for _ in _subcommands(p)):
        parts.append("COMMAND ...")
    return " ".join([prog, *parts])


def _default(a: argparse.Action) -> str:
    if not a.option_strings or a.required or a.nargs == 0:
        return ""
    if a.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{a.default}`"


def _table(p: argparse.ArgumentParser) -> list[str]:
    rows = ["| argument | value | default | meaning |", "|---|---|---|---|"]
    for a in _arguments(p):
        names = ", ".join(f"`{o}`" for o in a.option_strings) or f"`{_value(a)}`"
        value = f"`{_value(a)}`" if a.option_strings and _value(a) else ""
        meaning = (a.help or "").replace("%(prog)s", "wasi-map").replace("|", "\\|")
        if a.required and a.option_strings:
            meaning = f"required; {meaning}"
        rows.append(f"| {names} | {value} | {_default(a)} | {meaning} |")
    return rows


def reference() -> str:
    """The top-level options, then every command: usage and arguments."""
    top = parser()
    lines = ["```", usage("wasi-map", top), "```", "", *_table(top), ""]
    for name, help_text, sub in _subcommands(top):
        lines += [f"### wasi-map {name}", ""]
        if help_text:
            lines += [f"{help_text[0].upper()}{help_text[1:]}.", ""]
        lines += ["```", usage(f"wasi-map {name}", sub), "```", "", *_table(sub), ""]
    return "\n".join(lines)


def option_strings() -> set[str]:
    """Every option string and command name the parser knows (for the drift test)."""
    top = parser()
    found = {o for a in top._actions for o in a.option_strings}
    for name, _, sub in _subcommands(top):
        found.add(name)
        found |= {o for a in sub._actions for o in a.option_strings}
    return found
