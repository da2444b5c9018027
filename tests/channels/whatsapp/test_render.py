"""Rendering engine replies as WhatsApp messages: buttons, lists, numbered text, the phone
confirmation, the delete note, templates; and every button label of the flows, in both
languages, within what WhatsApp shows."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Literal

from hypothesis import given
from hypothesis import strategies as st

from channels.whatsapp.graph import (
    ButtonsMessage,
    ListMessage,
    Outgoing,
    TemplateMessage,
    TextMessage,
)
from channels.whatsapp.render import (
    CONTACT_OTHER,
    CONTACT_OWN,
    MAX_BUTTON_TITLE,
    MAX_ROW_TITLE,
    Words,
    contact_choice,
    numbered,
    render,
    render_template,
)
from flows import menu
from flows.i18n import LOCALES, Catalog, placeholders
from flows.types import Button, Reply, SayKind, Text

WA = "6281234567890"
FLOWS = Path(__file__).resolve().parents[3] / "flows"
SAMPLES = {"n": 5, "kpj": "123*****901", "year": "2026", "name": "D*** L******", "growth": "8"}
# Longer than a reply button allows: shown as a one-row list where offered alone (none today:
# "Register / link account" reads "Daftar / Hubungkan" and "Register / link" to fit).
LIST_ONLY: set[str] = set()
# Labels the WhatsApp channel never shows: its own two buttons replace the contact request.
NOT_SHOWN = {"Share my phone number"}


def reply(text: str, *labels: str, kind: SayKind = SayKind.MESSAGE) -> Reply:
    return Reply(text, (tuple(Button(label, f"d:{i}") for i, label in enumerate(labels)),)
                 if labels else (), kind)


CATALOG = Catalog(strict=True)
WORDS = {locale: Words.of(CATALOG, locale) for locale in LOCALES}


def only(replies: list[Reply], locale: str = "id") -> Outgoing:
    rendered = render(replies, words=WORDS[locale], wa_id=WA)
    assert len(rendered.messages) == 1
    return rendered.messages[0][1]


# --- choices ----------------------------------------------------------------------------------


def test_up_to_three_short_choices_are_reply_buttons() -> None:
    message = only([reply("Lanjut?", "Ya", "Tidak", "Nanti saja")])
    assert message == ButtonsMessage("Lanjut?", (("d:0", "Ya"), ("d:1", "Tidak"),
                                                 ("d:2", "Nanti saja")))


def test_four_to_ten_choices_are_a_list_with_a_localised_button() -> None:
    labels = [f"Pilihan {n}" for n in range(10)]
    message = only([reply("Menu", *labels)], "en")
    assert isinstance(message, ListMessage)
    assert (message.button, message.section) == ("Choose", "Options")
    assert [title for _, title in message.rows] == labels
    four = only([reply("Menu", *labels[:4])])
    assert isinstance(four, ListMessage) and four.button == "Pilih"


def test_a_label_too_long_for_a_button_makes_a_list() -> None:
    message = only([reply("Belum terhubung.", "Daftar / Hubungkan Akun")])
    assert isinstance(message, ListMessage)
    assert message.rows == (("d:0", "Daftar / Hubungkan Akun"),)


def test_more_than_ten_choices_are_numbered_text_in_the_engines_order() -> None:
    labels = [f"Tahun {2010 + n}" for n in range(12)]
    rendered = render([reply("Pilih tahun:", *labels), reply("Lagi:", *["a", "b"] * 6)],
                      words=WORDS["id"], wa_id=WA)
    first, second = (m for _, m in rendered.messages)
    assert isinstance(first, TextMessage) and isinstance(second, TextMessage)
    assert "1. Tahun 2010" in first.text and "12. Tahun 2021" in first.text
    assert "13. a" in second.text and "24. b" in second.text  # numbering continues
    assert first.text.endswith("Silakan balas dengan angka pilihan Anda.")


def shown(replies: list[Reply]) -> list[str]:
    """The data the engine keeps in ``Session.shown`` for these replies: "n" presses the n-th
    (every button of every reply in order, the share-contact button left out)."""
    return [b.data for r in replies for row in r.buttons for b in row if b.data != "contact"]


def test_numbers_are_the_engines_across_buttons_lists_and_the_contact_request() -> None:
    replies = [reply("Lanjut?", "Ya", "Tidak"),
               Reply("Bagikan nomor HP Anda.", ((Button("Bagikan nomor HP saya", "contact"),),),
                     SayKind.ASK_CONTACT),
               reply("Pilih tahun:", *[f"Tahun {2010 + n}" for n in range(12)])]
    numbers = {n: b.data for _, found in numbered(replies) for n, b in found}
    assert list(numbers.values()) == shown(replies) and list(numbers) == list(range(1, 15))
    messages = [m for _, m in render(replies, words=WORDS["id"], wa_id=WA).messages]
    buttons, contact, listed = messages
    assert isinstance(buttons, ButtonsMessage) and [i for i, _ in buttons.buttons] == shown(
        replies)[:2]  # "1" and "2", in the order shown
    assert isinstance(contact, ButtonsMessage)  # the channel's own two: not numbered
    assert isinstance(listed, TextMessage)
    assert "3. Tahun 2010" in listed.text and "14. Tahun 2021" in listed.text
    template = render_template(replies, name="t", language="id", words=WORDS["id"])
    [(_, body)] = template.messages
    assert isinstance(body, TemplateMessage) and body.body is not None
    assert "1 = Ya, 2 = Tidak" in body.body and "3 = Tahun 2010" in body.body
    assert "Bagikan nomor HP saya" not in body.body  # the share button is never a number


def test_a_label_too_long_even_for_a_list_is_numbered_not_cut() -> None:
    label = "Sebuah label yang terlalu panjang untuk daftar"
    message = only([reply("Pilih:", label)])
    assert isinstance(message, TextMessage) and f"1. {label}" in message.text


def test_a_long_body_goes_first_as_text() -> None:
    body = "\n".join(f"Baris {n} " + "x" * 60 for n in range(40))
    rendered = render([reply(body, "Ya", "Tidak")], words=WORDS["id"], wa_id=WA)
    *texts, (_, buttons) = rendered.messages
    assert texts and all(isinstance(m, TextMessage) for _, m in texts)
    assert isinstance(buttons, ButtonsMessage) and len(buttons.text) <= 1024
    assert "\n".join(m.text for _, m in rendered.messages
                     if isinstance(m, TextMessage | ButtonsMessage)) == body


def test_text_over_4096_characters_is_split_at_line_breaks() -> None:
    body = "\n".join("y" * 99 for _ in range(100))
    rendered = render([reply(body)], words=WORDS["id"], wa_id=WA)
    parts = [m.text for _, m in rendered.messages if isinstance(m, TextMessage)]
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts) == body


def test_choices_without_text_get_a_prompt() -> None:
    for blank in ("", "  \n"):
        message = only([reply(blank, "Ya", "Tidak")])
        assert isinstance(message, ButtonsMessage) and message.text == "Silakan pilih:"


# --- the phone step and the delete note -------------------------------------------------------


def test_the_contact_request_asks_to_confirm_the_senders_number() -> None:
    message = only([reply("Bagikan nomor HP Anda.", "Bagikan nomor HP saya",
                          kind=SayKind.ASK_CONTACT)])
    assert isinstance(message, ButtonsMessage)
    assert message.text == "Bagikan nomor HP Anda.\n\nGunakan nomor WhatsApp ini (0812****7890)?"
    assert message.buttons == ((CONTACT_OWN, "Ya, gunakan"),
                               (f"{CONTACT_OTHER}:id", "Nomor lain"))


def test_the_confirmations_labels_typed_are_recognised_in_either_language() -> None:
    languages = WORDS.values()
    assert contact_choice("ya, gunakan", languages) == (CONTACT_OWN, WORDS["id"])
    assert contact_choice("Nomor lain!", languages) == (CONTACT_OTHER, WORDS["id"])
    assert contact_choice("YES use this number", languages) == (CONTACT_OWN, WORDS["en"])
    assert contact_choice("use another number", languages) == (CONTACT_OTHER, WORDS["en"])
    for other in ("ya", "nomor", "0812 1111 2222", "", "pakai nomor ini saja"):
        assert contact_choice(other, languages) is None


def test_the_delete_note_asks_the_member_to_delete_it() -> None:
    said = reply("Saya telah menghapus pesan Anda yang berisi NIK.",
                 kind=SayKind.DELETE_MEMBER_MESSAGE)
    for locale in LOCALES:
        message = only([said], locale)
        assert message == TextMessage(WORDS[locale].delete_yourself)
    assert "mohon hapus pesan" in WORDS["id"].delete_yourself


# --- templates --------------------------------------------------------------------------------


def test_a_template_carries_the_replies_on_one_line_with_numbered_choices() -> None:
    rendered = render_template(
        [reply("Halo,\n\npetugas   membalas.\tTerima kasih."),
         reply("Nilai bantuan kami:", "1", "2"),
         reply("dihapus", kind=SayKind.DELETE_MEMBER_MESSAGE)],
        name="balas_petugas", language="id", words=WORDS["id"])
    [(_, message)] = rendered.messages
    assert message == TemplateMessage("balas_petugas", "id",
                                      "Halo, petugas membalas. Terima kasih. — Nilai bantuan "
                                      "kami: — Silakan balas dengan angka: 1 = 1, 2 = 2")


def test_a_template_for_the_rest_of_a_turn_keeps_the_turns_numbers() -> None:
    rendered = render_template([reply("Sudah terkirim.", "A", "B"), reply("Lagi:", "C")],
                               name="t", language="id", words=WORDS["id"], skip=1)
    [(_, message)] = rendered.messages
    assert isinstance(message, TemplateMessage)
    assert message.body == "Lagi: — Silakan balas dengan angka: 3 = C"


def test_a_template_parameter_is_capped() -> None:
    rendered = render_template([reply("z" * 5000)], name="t", language="en", words=WORDS["en"])
    [(_, message)] = rendered.messages
    assert isinstance(message, TemplateMessage) and message.body is not None
    assert len(message.body) == 900 and message.body.endswith("…")


# --- any reply, within the limits -----------------------------------------------------------


SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
labels = st.text(st.characters(codec="utf-8", exclude_categories=SURROGATES), min_size=1,
                 max_size=30)
replies = st.lists(st.builds(
    Reply, st.text(max_size=5000),
    st.lists(st.lists(labels.map(lambda t: Button(t, t)), min_size=1, max_size=4),
             max_size=4).map(lambda rows: tuple(tuple(r) for r in rows)),
    st.sampled_from(list(SayKind))), min_size=1, max_size=4)


@given(replies, st.sampled_from(LOCALES))
def test_every_rendering_is_within_whatsapps_limits(items: list[Reply], locale: str) -> None:
    rendered = render(items, words=WORDS[locale], wa_id=WA)
    for _, message in rendered.messages:
        if isinstance(message, TextMessage):
            assert len(message.text) <= 4096
        elif isinstance(message, ButtonsMessage):
            assert 1 <= len(message.buttons) <= 3 and 0 < len(message.text) <= 1024
            assert all(len(t) <= MAX_BUTTON_TITLE for _, t in message.buttons)
            assert len({i for i, _ in message.buttons}) == len(message.buttons)
        else:
            assert isinstance(message, ListMessage)
            assert 1 <= len(message.rows) <= 10 and 0 < len(message.text) <= 4096
            assert all(len(t) <= MAX_ROW_TITLE for _, t in message.rows)
            assert len(message.button) <= 20 and len(message.section) <= 24
    numbers = [n for _, found in numbered(items) for n, _ in found]
    assert numbers == list(range(1, len(shown(items)) + 1))


# --- every label of the flows, in both languages ------------------------------------------


def option_labels() -> set[str]:
    """Message ids of every button label the flows build: ``option(...)``,
    ``Option(Text(...))`` and FAQ topic labels, constants resolved."""
    found: set[str] = set()
    unresolved: set[str] = set()
    for path in sorted(FLOWS.glob("*.py")):
        module = importlib.import_module(f"flows.{path.stem}")
        for node in ast.walk(ast.parse(path.read_text())):
            arg = _label_argument(node)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add(arg.value)
            elif isinstance(arg, ast.Name) and isinstance(getattr(module, arg.id, None), str):
                found.add(getattr(module, arg.id))
            elif (isinstance(arg, ast.IfExp) and isinstance(arg.body, ast.Constant)
                  and isinstance(arg.orelse, ast.Constant)):
                found |= {str(arg.body.value), str(arg.orelse.value)}
            elif (isinstance(arg, ast.Subscript) and isinstance(arg.value, ast.Name)
                  and isinstance(table := getattr(module, arg.value.id, None), dict)
                  and all(isinstance(label, str) for label in table.values())):
                found |= set(table.values())  # a label looked up in a module's table
            elif (isinstance(arg, ast.Attribute) and arg.attr == "label"
                  and isinstance(arg.value, ast.Name)
                  and isinstance(label := getattr(getattr(module, arg.value.id, None), "label",
                                                  None), str)):
                found.add(label)  # a module-level topic's label
            elif arg is not None:
                unresolved.add(f"{path.stem}:{ast.unparse(arg)}")
    # option()'s own body and the FAQ list reading TOPICS (whose labels are found above); the
    # question back's INTENT_LABELS[name] is a table, resolved above
    assert unresolved == {"flow:label", "faq:t.label"}
    assert set(menu.INTENT_LABELS.values()) <= found
    return found


def _label_argument(node: ast.AST) -> ast.expr | None:
    if not isinstance(node, ast.Call):
        return None
    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
    if name == "option" and node.args:
        return node.args[0]
    if name == "Option" and node.args and isinstance(node.args[0], ast.Call):
        inner = node.args[0]
        return inner.args[0] if inner.args else None
    if name == "FaqTopic":
        label = next((k.value for k in node.keywords if k.arg == "label"), None)
        return label.args[0] if isinstance(label, ast.Call) and label.args else label
    return None


def test_every_button_label_fits_in_both_languages() -> None:
    catalog = Catalog(strict=True)
    found = option_labels()
    assert {"Check balance", "I agree", "Claim JHT", "KPJ {kpj}", "{n}"} <= found
    too_long: dict[str, str] = {}
    for msgid in sorted(found - NOT_SHOWN):
        assert placeholders(msgid) <= set(SAMPLES), msgid
        for locale in LOCALES:
            label = catalog.render(Text(msgid, SAMPLES), locale)
            assert len(label) <= MAX_ROW_TITLE, (msgid, locale, label)
            if len(label) > MAX_BUTTON_TITLE:
                too_long[f"{locale}:{msgid}"] = label
            message = only([Reply("?", ((Button(label, "x"),),))], locale)
            assert isinstance(message, ButtonsMessage | ListMessage)
    assert {key.split(":", 1)[1] for key in too_long} <= LIST_ONLY, too_long


def test_the_channels_own_words_fit_and_are_translated() -> None:
    for words in WORDS.values():
        assert len(words.use_own) <= MAX_BUTTON_TITLE
        assert len(words.use_other) <= MAX_BUTTON_TITLE
        assert len(words.choose) <= 20 and len(words.options) <= 24
        assert "{phone}" in words.own_number
    assert (WORDS["id"].choose, WORDS["en"].choose) == ("Pilih", "Choose")
    assert WORDS["id"].use_own == "Ya, gunakan"
    assert WORDS["id"].own_number == "Gunakan nomor WhatsApp ini ({phone})?"
