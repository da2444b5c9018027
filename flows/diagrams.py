"""Mermaid diagrams of every flow table and the table of commands, for ``docs/flows.md``.

    uv run python -m flows.diagrams > docs/flows.md

A test checks that the committed file matches the tables.
"""

from __future__ import annotations

import os

from flows.flow import mermaid
from flows.routes import ENTRIES, FLOWS


def entry_points(flow_name: str) -> list[tuple[str, str]]:
    """``(intent, state)`` for every state of ``flow_name`` an entry can lead to. Entries run
    by one step function to one state draw as one arrow named by their common prefix
    (``faq.*``: every FAQ topic), so that adding a topic leaves the diagram as it is."""
    grouped: dict[tuple[object, str], list[str]] = {}
    for intent, entry in ENTRIES.items():
        for target in sorted(entry.goes_to):
            if target.startswith(flow_name + ":"):
                grouped.setdefault((entry.run, target), []).append(intent)
    return [(_label(names), target) for (_, target), names in grouped.items()]


def _label(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    prefix = os.path.commonprefix(names).rpartition(".")[0]
    return f"{prefix}.*" if prefix else ", ".join(names)


def command_table() -> str:
    """Every command as its flow declares it: Indonesian, English, other words, the entry it
    opens, and what the command menu and ``/bantuan`` say of it (unlisted when empty)."""
    lines = ["| Command | English | Also | Opens | Flow | Listed as |",
             "| --- | --- | --- | --- | --- | --- |"]
    for flow in FLOWS:
        for c in flow.commands:
            also = ", ".join(f"`/{word}`" for word in c.aliases)
            lines.append(f"| `/{c.name}` | `/{c.english or c.name}` | {also} | `{c.entry}` "
                         f"| {flow.name} | {c.summary or '(not listed)'} |")
    return "\n".join(lines) + "\n"


def document() -> str:
    """The whole Markdown document."""
    parts = ["# Conversation flows\n",
             "Generated from the flow tables by `uv run python -m flows.diagrams`; "
             "`menu:main` is the resting state where free text is classified into an intent.\n",
             "## Commands\n\n" + command_table()]
    for flow in FLOWS:
        if flow.steps:
            parts.append(f"## {flow.name}\n\n```mermaid\n"
                         f"{mermaid(flow, entry_points(flow.name))}```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(document(), end="")
