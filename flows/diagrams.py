"""Mermaid diagrams of every flow table, for ``docs/flows.md``.

    uv run python -m flows.diagrams > docs/flows.md

A test checks that the committed file matches the tables.
"""

from __future__ import annotations

from flows.flow import mermaid
from flows.routes import COMMANDS, ENTRIES, FLOWS


def entry_points(flow_name: str) -> list[tuple[str, str]]:
    """``(intent, state)`` for every state of ``flow_name`` an entry can lead to."""
    return [(intent, target) for intent, entry in ENTRIES.items()
            for target in sorted(entry.goes_to) if target.startswith(flow_name + ":")]


def document() -> str:
    """The whole Markdown document."""
    parts = ["# Conversation flows\n",
             "Generated from the flow tables by `uv run python -m flows.diagrams`; "
             "`menu:main` is the resting state where free text is classified into an intent.\n",
             "Commands: " + ", ".join(f"`/{c}`" for c in sorted(COMMANDS)) + ".\n"]
    for flow in FLOWS:
        parts.append(f"## {flow.name}\n\n```mermaid\n{mermaid(flow, entry_points(flow.name))}"
                     "```\n")
    return "\n".join(parts)


if __name__ == "__main__":
    print(document(), end="")
