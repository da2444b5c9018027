"""A Babel extractor that finds message ids however deeply the calls are nested.

Babel's built-in Python extractor misses a marker call nested inside another marker call
(``say("...", (option("Yes", "faq:yes"),))``), which is how flows build buttons. This one walks
the syntax tree and yields the literal first argument of every marker call, both branches of a
literal ``a if cond else b``, and singular and plural of ``say_plural``, ``plural`` and
``Text(..., plural=...)``, reported as Babel's own
``N_`` and ``ngettext`` keywords. ``babel.cfg`` names it.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

MARKERS = frozenset({"N_", "say", "option", "Text", "delete_member_message"})
PLURAL_MARKERS = frozenset({"say_plural", "plural"})

Extracted = tuple[int, str, str | tuple[str, str], list[str]]


def extract(fileobj: IO[bytes], keywords: Mapping[str, Any] | Collection[str],
            comment_tags: Collection[str], options: Mapping[str, Any]) -> Iterator[Extracted]:
    """Babel's extractor interface: ``(lineno, funcname, message, comments)`` tuples."""
    tree = ast.parse(fileobj.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            yield from _messages(node)


def _messages(call: ast.Call) -> Iterator[Extracted]:
    name = _name(call.func)
    plural_kw = next((k.value for k in call.keywords if k.arg == "plural"), None)
    if name == "Text" and plural_kw is not None:
        singular, plural = _literals(call.args[0]), _literals(plural_kw)
        if singular and plural:
            yield call.lineno, "ngettext", (singular[0], plural[0]), []
    elif name in MARKERS:
        for text in _literals(call.args[0]):
            yield call.lineno, "N_", text, []
    elif name in PLURAL_MARKERS and len(call.args) >= 2:
        singular, plural = _literals(call.args[0]), _literals(call.args[1])
        if singular and plural:
            yield call.lineno, "ngettext", (singular[0], plural[0]), []


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def _literals(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.IfExp):
        return _literals(node.body) + _literals(node.orelse)
    return []
