"""FAQ: the topic list, short answers, and "was this helpful?" with an offer of a person.

Every topic of :data:`flows.faq_content.TOPICS` is an entry of this flow, named by its intent."""

from __future__ import annotations

from enum import StrEnum

from flows.faq_content import FAQ_INTRO, TOPIC_BY_INTENT, TOPICS
from flows.flow import Command, Context, Flow, Outcome, option, say, step
from flows.i18n import N_
from flows.menu import MENU, back_to_menu
from flows.types import EventKind, Option, Say, Text


class FaqState(StrEnum):
    """States of the FAQ flow."""

    FEEDBACK = "faq:feedback"


FEEDBACK = FaqState.FEEDBACK.value


def topic_list() -> Say:
    """All topics as buttons, two per row."""
    buttons = [Option(Text(t.label), "go:" + t.intent) for t in TOPICS]
    rows = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
    return Say(Text(FAQ_INTRO), rows)


async def show_topics(ctx: Context) -> Outcome:
    """The FAQ menu."""
    return Outcome(MENU, (topic_list(),), data={})


async def answer(ctx: Context) -> Outcome:
    """The answer to the topic the member asked about, then "was this helpful?"."""
    topic = TOPIC_BY_INTENT[str(ctx.slots.get("intent", ""))]
    answered = say("{answer}\n\nWas this helpful?",
                   (option("Yes", "faq:yes"), option("No", "faq:no")),
                   (option("More questions", "go:faq"), option("Main menu", "go:menu")),
                   answer=Text(topic.answer, topic.params))
    return Outcome(FEEDBACK, (answered,), data={"topic": topic.intent})


async def feedback(ctx: Context) -> Outcome:
    """Thank for a yes; after a no, offer a person. Typed text is read as a new request."""
    event = ctx.event
    if event.kind is not EventKind.BUTTON or event.data not in ("faq:yes", "faq:no"):
        return Outcome(MENU, pass_on=True)
    if event.data == "faq:yes":
        return back_to_menu(say("Glad it helped!"))
    return Outcome(MENU, (say(
        "Sorry it didn't help. Would you like to contact an agent?",
        (option("Contact an agent", "go:handoff:faq_unhelpful"),
         option("More questions", "go:faq")),
        (option("Main menu", "go:menu"),)),), data={})


FLOW = Flow("faq", {FEEDBACK: step(feedback, MENU)}, entries={
    "faq": step(show_topics, MENU),
    **{topic.intent: step(answer, FEEDBACK) for topic in TOPICS},
}, commands=(Command("faq", "faq", english="faq", summary=N_("Frequently asked questions"),
                     aliases=("tanya",)),))
