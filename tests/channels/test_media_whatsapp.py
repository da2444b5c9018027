"""Replies with a file for WhatsApp: how they render (no HTTP), and the Graph API client's media
upload against the fake Graph API on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from channels.whatsapp.graph import (
    ButtonsMessage,
    DocumentMessage,
    GraphClient,
    GraphError,
    ImageMessage,
    ListMessage,
    TemplateMessage,
    TextMessage,
)
from channels.whatsapp.render import (
    MAX_CAPTION,
    FileMessage,
    Words,
    render,
    render_template,
)
from flows.i18n import Catalog
from flows.types import Attachment, Button, Reply, SayKind
from tests.fakes.graph_api import FakeGraphApi
from tests.fakes.media_samples import PDF, PNG

WA_ID = "6281234567890"
WORDS = Words.of(Catalog(), "id")
STATEMENT = Attachment("laporan-iuran-2025.pdf", "application/pdf", PDF)
CHART = Attachment("grafik-saldo.png", "image/png", PNG)
TWO = ((Button("Unduh lagi", "stmt:again"), Button("Menu", "go:menu")),)


def _messages(replies: list[Reply]) -> list[object]:
    return [message for _, message in render(replies, words=WORDS, wa_id=WA_ID).messages]


# --- rendering ------------------------------------------------------------------------------


def test_a_document_renders_as_a_file_with_its_caption() -> None:
    [message] = _messages([Reply("Laporan 2025", kind=SayKind.DOCUMENT, attachment=STATEMENT)])
    assert message == FileMessage(STATEMENT, "Laporan 2025", photo=False)
    assert isinstance(message, FileMessage)
    assert message.sent_as("m1") == DocumentMessage("m1", "laporan-iuran-2025.pdf",
                                                    "Laporan 2025")


def test_a_photo_renders_as_an_image() -> None:
    [message] = _messages([Reply("Grafik", kind=SayKind.PHOTO, attachment=CHART)])
    assert isinstance(message, FileMessage) and message.photo
    assert message.sent_as("m2") == ImageMessage("m2", "Grafik")


def test_buttons_follow_the_file_as_an_interactive_message() -> None:
    messages = _messages([Reply("Laporan", TWO, SayKind.DOCUMENT, attachment=STATEMENT)])
    assert isinstance(messages[0], FileMessage)
    assert messages[1] == ButtonsMessage(WORDS.prompt, (("stmt:again", "Unduh lagi"),
                                                        ("go:menu", "Menu")))


def test_many_buttons_after_a_file_become_a_list() -> None:
    rows = tuple((Button(f"Tahun {2015 + n}", f"stmt:{2015 + n}"),) for n in range(5))
    messages = _messages([Reply("Grafik", rows, SayKind.PHOTO, attachment=CHART)])
    assert isinstance(messages[1], ListMessage) and len(messages[1].rows) == 5


def test_a_text_too_long_for_a_caption_goes_first() -> None:
    text = "a" * (MAX_CAPTION + 1)
    messages = _messages([Reply(text, kind=SayKind.DOCUMENT, attachment=STATEMENT)])
    assert messages == [TextMessage(text), FileMessage(STATEMENT, "", photo=False)]


def test_the_template_says_the_file_could_not_come() -> None:
    replies = [Reply("Laporan 2025", TWO, SayKind.DOCUMENT, attachment=STATEMENT)]
    [(_, template)] = render_template(replies, name="balas_petugas", language="id",
                                      words=WORDS, file_note="Berkas tidak terkirim.").messages
    assert isinstance(template, TemplateMessage)
    assert template.body == ("Laporan 2025 — Berkas tidak terkirim. — "
                             f"{WORDS.numbers} 1 = Unduh lagi, 2 = Menu")


def test_a_remembered_file_reply_without_its_bytes_still_gets_the_note() -> None:
    replies = [Reply("", kind=SayKind.PHOTO)]  # a turn keeps no bytes
    [(_, template)] = render_template(replies, name="balas_petugas", language="id",
                                      words=WORDS, file_note="Berkas tidak terkirim.").messages
    assert isinstance(template, TemplateMessage)
    assert template.body == "Berkas tidak terkirim."


# --- the upload -----------------------------------------------------------------------------


@pytest.fixture
async def graph() -> AsyncIterator[FakeGraphApi]:
    async with FakeGraphApi() as server:
        yield server


@pytest.fixture
async def client(graph: FakeGraphApi) -> AsyncIterator[GraphClient]:
    sender = GraphClient(token=graph.token, phone_number_id=graph.phone_number_id,
                         api_base=graph.api_base)
    yield sender
    await sender.close()


async def test_an_upload_keeps_every_byte_and_names_the_file(graph: FakeGraphApi,
                                                             client: GraphClient) -> None:
    media_id = await client.upload_media(PDF, filename="laporan.pdf", mime="application/pdf")
    upload = graph.uploads[media_id]
    assert (upload.content, upload.filename, upload.mime, upload.content_type) == (
        PDF, "laporan.pdf", "application/pdf", "application/pdf")


async def test_a_document_message_names_the_upload(graph: FakeGraphApi,
                                                   client: GraphClient) -> None:
    graph.member_wrote(WA_ID)
    media_id = await client.upload_media(PDF, filename="laporan.pdf", mime="application/pdf")
    await client.send(WA_ID, DocumentMessage(media_id, "laporan-iuran.pdf", "Laporan"))
    [call] = graph.sent(WA_ID)
    assert call.body == {"messaging_product": "whatsapp", "recipient_type": "individual",
                         "to": WA_ID, "type": "document", "document": {
                             "id": media_id, "filename": "laporan-iuran.pdf",
                             "caption": "Laporan"}}
    [got] = graph.files(WA_ID)
    assert (got.type, got.filename, got.caption, got.content) == (
        "document", "laporan-iuran.pdf", "Laporan", PDF)


async def test_an_image_without_caption_sends_none(graph: FakeGraphApi,
                                                   client: GraphClient) -> None:
    graph.member_wrote(WA_ID)
    media_id = await client.upload_media(PNG, filename="grafik.png", mime="image/png")
    await client.send(WA_ID, ImageMessage(media_id))
    assert graph.sent(WA_ID)[0].body["image"] == {"id": media_id}


async def test_a_type_meta_does_not_take_is_refused(graph: FakeGraphApi,
                                                    client: GraphClient) -> None:
    with pytest.raises(GraphError) as refused:
        await client.upload_media(b"MZ\x90\x00", filename="x.exe",
                                  mime="application/x-msdownload")
    assert refused.value.code == 131053
    assert graph.uploads == {} and graph.refused_uploads == 1


async def test_an_injected_upload_fault_is_a_graph_error(graph: FakeGraphApi,
                                                         client: GraphClient) -> None:
    graph.fail_uploads(131000, status=500)
    with pytest.raises(GraphError) as refused:
        await client.upload_media(PNG, filename="grafik.png", mime="image/png")
    assert (refused.value.code, refused.value.status) == (131000, 500)
    assert await client.upload_media(PNG, filename="grafik.png", mime="image/png")


async def test_an_image_message_must_name_a_picture(graph: FakeGraphApi,
                                                    client: GraphClient) -> None:
    graph.member_wrote(WA_ID)
    media_id = await client.upload_media(PDF, filename="laporan.pdf", mime="application/pdf")
    with pytest.raises(GraphError) as refused:
        await client.send(WA_ID, ImageMessage(media_id, "Grafik"))
    assert refused.value.code == 131053


async def test_an_unreachable_api_is_code_zero() -> None:
    gone = GraphClient(token="t", phone_number_id="1", api_base="http://127.0.0.1:1/v21.0")
    try:
        with pytest.raises(GraphError) as refused:
            await gone.upload_media(PDF, filename="laporan.pdf", mime="application/pdf")
        assert refused.value.code == 0
    finally:
        await gone.close()


async def test_a_large_document_arrives_and_an_oversized_image_is_refused(
        graph: FakeGraphApi, client: GraphClient) -> None:
    large = PDF + bytes(2 * 1024 * 1024)  # beyond aiohttp's default 1 MiB body
    media_id = await client.upload_media(large, filename="laporan.pdf", mime="application/pdf")
    assert graph.uploads[media_id].content == large
    with pytest.raises(GraphError) as refused:
        await client.upload_media(PNG + bytes(5 * 1024 * 1024), filename="grafik.png",
                                  mime="image/png")
    assert refused.value.code == 131053
