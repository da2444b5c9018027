"""What the WhatsApp channel keeps of a chat in ``Session.view`` (the 24-hour window from each
message's own timestamp, the replies' language) and the turns of sent messages it remembers."""

from __future__ import annotations

from channels.whatsapp.chats import WINDOW, WINDOW_MARGIN, ChatView, SentTurns, Turn
from flows.types import Reply

NOW = 1_800_000_000.0


def test_the_view_round_trips_through_the_session_and_leaves_other_keys_alone() -> None:
    kept: dict[str, object] = {"unknown": True, "other": 1}
    view = ChatView.load(kept)
    assert view == ChatView()
    view.wrote(NOW - 10, NOW)
    view.spoke([Reply("Hello", locale="en")])
    view.save(kept)
    assert kept == {"unknown": True, "other": 1, "seen": NOW - 10, "locale": "en"}
    assert ChatView.load(kept) == view
    assert ChatView.load({"seen": "yesterday", "locale": "fr"}) == ChatView()
    assert ChatView.load({"seen": True}) == ChatView()


def test_the_window_runs_from_the_latest_message_by_its_own_timestamp() -> None:
    view = ChatView()
    assert not view.window_open(NOW)  # never wrote: closed
    view.wrote(NOW - 25 * 3600, NOW)  # delivered a day late
    assert not view.window_open(NOW)
    view.wrote(NOW - 3600, NOW)
    assert view.window_open(NOW)
    view.wrote(NOW - 30 * 3600, NOW)  # an older one delivered later never moves it back
    assert view.seen == NOW - 3600
    view.wrote(NOW + 600, NOW)  # a clock ahead of ours counts as now
    assert view.seen == NOW
    view.wrote(None, NOW + 5)  # no timestamp: when it arrived
    assert view.seen == NOW + 5
    closing = ChatView(NOW - WINDOW + WINDOW_MARGIN / 2)
    assert not closing.window_open(NOW)  # too close to the end: the template is safer


def test_the_chats_language_is_the_last_replys() -> None:
    view = ChatView()
    assert view.spoke([Reply("x")]) == "id"  # never known: Indonesian
    assert view.locale == ""
    assert view.spoke([Reply("a", locale="id"), Reply("b", locale="en")]) == "en"
    assert view.spoke([Reply("agent's words")]) == "en"  # no locale: the chat's stays
    assert view.spoke([Reply("Halo", locale="id")]) == "id"


def test_sent_turns_keep_the_newest_message_ids() -> None:
    turns = SentTurns(size=2)
    turn = Turn("6281234567890", (Reply("a"),), "id", NOW, template=False)
    for ident in ("m1", "m2", "m3"):
        turns.add(ident, turn)
    assert len(turns) == 2
    assert turns.get("m1") is None and turns.get("m3") is turn
