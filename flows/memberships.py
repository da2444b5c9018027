"""Which memberships a chat may see, grouped by person, and choosing one when there are several.

A chat sees the KPJ it was linked to after OTP verification and every other KPJ of the same
person (same NIK) that the balance service lists: several employers over a career. A chat may
be linked to several people (a family sharing one phone): their memberships are never mixed.
A total sums one person's memberships only, and such a chat is first asked whose data to show.
The bot never stores a NIK: a person is the set of KPJ a membership summary lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from flows.flow import Context, Outcome, option, say
from flows.i18n import N_
from flows.identifiers import mask_kpj, mask_name
from flows.menu import back_to_menu
from flows.ports import MemberSummary
from flows.types import EventKind, Option, Say, Text

JAKARTA = ZoneInfo("Asia/Jakarta")
MAX_CHOICES = 8
WHOSE = N_("This chat is linked to the memberships of several people. Whose memberships "
           "would you like to see?")
_PERSON_ARG = re.compile(r"who(\d{1,2})\.([0-9a-f]{6})")


@dataclass(frozen=True, slots=True)
class Person:
    """One person's memberships as this chat may see them: the chat's linked KPJ first.
    ``name`` is as the balance service has it (empty when unknown) and is shown only masked."""

    name: str
    kpjs: tuple[str, ...]

    @property
    def masked_name(self) -> str:
        """The name as it may be shown: ``S*** R*****``."""
        return mask_name(self.name)


def today(ctx: Context) -> date:
    """Today's date in Jakarta, where the balance's "as of" date is counted."""
    return ctx.now.astimezone(JAKARTA).date()


async def member_summary(ctx: Context, kpj: str) -> MemberSummary | None:
    """The membership's summary, read once per update however many steps ask."""
    name = f"summary:{kpj}"
    if name not in ctx.memo:
        ctx.memo[name] = await ctx.ports.balance.member_summary(kpj)
    found: MemberSummary | None = ctx.memo[name]
    return found


async def group_by_person(ctx: Context, kpjs: Iterable[str], *,
                          with_other_kpjs: bool = False) -> list[Person]:
    """``kpjs`` grouped by person (same NIK, as the summaries list them), in first-seen order;
    ``with_other_kpjs`` adds each person's other KPJ after the given ones, oldest first."""
    groups: list[tuple[str, list[str], tuple[str, ...]]] = []  # name, KPJ, the person's KPJ
    for kpj in dict.fromkeys(kpjs):
        owner = next((g for g in groups if kpj in g[2]), None)
        if owner is not None:
            owner[1].append(kpj)
            continue
        summary = await member_summary(ctx, kpj)
        if summary is None:
            groups.append(("", [kpj], (kpj,)))
        else:
            groups.append((summary.name, [kpj], (*summary.kpjs, kpj)))
    if with_other_kpjs:
        for _, shown, same in groups:
            shown.extend(k for k in dict.fromkeys(same) if k not in shown)
    return [Person(name, tuple(shown)) for name, shown, _ in groups]


async def people(ctx: Context) -> list[Person]:
    """The people this chat is linked to, in link order, each with every KPJ of theirs."""
    linked = await ctx.ports.accounts.linked_kpjs(ctx.key)
    return await group_by_person(ctx, linked, with_other_kpjs=True)


async def visible_kpjs(ctx: Context) -> list[str]:
    """Every KPJ this chat may see, person by person; empty if unlinked."""
    return [kpj for person in await people(ctx) for kpj in person.kpjs]


def offer_registration() -> Outcome:
    """What an unlinked chat hears instead of personal data."""
    return back_to_menu(say(
        "To see your balance, this chat must first be linked to your membership. It takes "
        "about a minute: you need your NIK, KPJ number and date of birth.",
        (option("Register / link account", "go:register"),)))


def choose_question(msgid: str, kpjs: list[str], *, with_all: bool, **params: str) -> Say:
    """Ask which KPJ, one button per masked KPJ (and "All" when asked)."""
    buttons = [Option(Text("KPJ {kpj}", {"kpj": mask_kpj(k)}), f"kpj:{i}")
               for i, k in enumerate(kpjs[:MAX_CHOICES])]
    rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
    if with_all:
        rows.append((option("All memberships", "kpj:all"),))
    return Say(Text(msgid, params), tuple(rows))


def chosen(ctx: Context) -> str | None:
    """The KPJ picked by a ``kpj:<n>`` button (``"all"`` for every one), else ``None``."""
    event = ctx.event
    kpjs = [str(k) for k in ctx.data.get("kpjs", [])]
    if event.kind is not EventKind.BUTTON or not event.data.startswith("kpj:"):
        return None
    pick = event.data.removeprefix("kpj:")
    if pick == "all":
        return "all"
    return kpjs[int(pick)] if pick.isdigit() and int(pick) < len(kpjs) else None


def _person_tag(ctx: Context, person: Person) -> str:
    """Six hex characters naming ``person`` in this chat: a button stays valid only while the
    same person is at the same place in the chat's list (never a KPJ in button data)."""
    return ctx.tag("person:" + ",".join(sorted(person.kpjs)))[:6]


def _whose_question(ctx: Context, found: list[Person], msgid: str) -> Say:
    """One button per person, by masked name; the entry that asked runs again with the pick."""
    entry = ctx.slots.get("intent") or "menu"
    names = [p.masked_name for p in found]
    buttons = [_person_button(person, names, f"go:{entry}:who{i}.{_person_tag(ctx, person)}")
               for i, person in enumerate(found[:MAX_CHOICES])]
    return Say(Text(msgid), tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)))


def _person_button(person: Person, names: list[str], data: str) -> Option:
    """The masked name; the first masked KPJ instead when the name is unknown or not unique
    (a label stays short enough for a WhatsApp list row)."""
    if person.name and names.count(person.masked_name) == 1:
        return Option(Text("{name}", {"name": person.masked_name}), data)
    return Option(Text("KPJ {kpj}", {"kpj": mask_kpj(person.kpjs[0])}), data)


def _picked_person(ctx: Context, found: list[Person]) -> Person | None:
    """The person named by a pressed ``who<n>.<tag>`` button, when still the same person."""
    match = _PERSON_ARG.fullmatch(ctx.slots.get("arg", ""))
    if match is None or int(match[1]) >= len(found):
        return None
    person = found[int(match[1])]
    return person if _person_tag(ctx, person) == match[2] else None


async def target(ctx: Context, question: str, choose_state: str, *,
                 with_all: bool, whose: str = WHOSE) -> str | Outcome:
    """The KPJ to show: the one named in the message (``SALDO 12345678901``), the only one,
    or else the outcome that asks (in ``choose_state``) whose memberships when the chat is
    linked to several people (``whose``), then which of the person's KPJ (``question``, with
    "all of theirs" when ``with_all``); or offers registration to an unlinked chat, or says a
    named KPJ is not this chat's. Called from an entry step: a person's button runs the same
    entry again (``go:<intent>:who<n>.<tag>``)."""
    found = await people(ctx)
    if not found:
        return offer_registration()
    asked = ctx.slots.get("kpj", "")
    if asked:
        if not any(asked in person.kpjs for person in found):
            return back_to_menu(say("KPJ {kpj} is not linked to this chat. To see it, register "
                                    "it with /daftar.", kpj=mask_kpj(asked)))
        return asked
    person = found[0] if len(found) == 1 else _picked_person(ctx, found)
    if person is None:
        return Outcome(choose_state, (_whose_question(ctx, found, whose),), data={})
    if len(person.kpjs) == 1:
        return person.kpjs[0]
    kpjs = list(person.kpjs)
    return Outcome(choose_state, (_which_of(person, question, with_all=with_all,
                                            named=len(found) > 1),), data={"kpjs": kpjs})


def _which_of(person: Person, question: str, *, with_all: bool, named: bool) -> Say:
    """Which of the person's KPJ; ``named``: the chat has several people, so say whose."""
    kpjs = list(person.kpjs)
    if not named:
        return choose_question(question, kpjs, with_all=with_all)
    # "All memberships" stays short (a WhatsApp button holds 20 characters): the question
    # and the total name the person.
    return choose_question(N_("{name} has several memberships. Which one would you like to "
                              "see?"), kpjs, with_all=with_all, name=person.masked_name)
