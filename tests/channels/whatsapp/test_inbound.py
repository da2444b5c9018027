"""Meta's webhook notifications (the documented fixtures) parsed into messages and statuses,
and the signature over the raw body."""

from __future__ import annotations

import json

import pytest

from channels.whatsapp.inbound import (
    Inbound,
    Status,
    message_ref,
    parse_notification,
    sign,
    signature_ok,
)
from tests.fakes.graph_webhooks import FIXTURES, fixture

NUMBER_ID = "106540352242922"
SITI = "6281234567890"


def parsed(name: str) -> Inbound:
    [message] = parse_notification(fixture(name), NUMBER_ID).messages
    return message


def test_a_text_message() -> None:
    message = parsed("text_message")
    assert (message.kind, message.wa_id, message.text) == ("text", SITI, "cek saldo")
    assert message.id.startswith("wamid.") and message.sent_at == 1795165200.0


def test_reply_buttons_list_rows_and_quick_replies_carry_their_id() -> None:
    assert (parsed("interactive_button_reply").kind,
            parsed("interactive_button_reply").data) == ("button", "reg:agree")
    assert parsed("interactive_list_reply").data == "go:check_balance"
    assert parsed("quick_reply_button").data == "go:menu"
    assert parsed("quick_reply_button").kind == "button"


def test_a_contact_card_is_the_senders_own_only_when_its_wa_id_is_the_sender() -> None:
    other = parsed("contacts_message")
    assert (other.kind, other.phone, other.own) == ("contact", "+62 856-1234-5678", False)
    payload = fixture("contacts_message")
    card = payload["entry"][0]["changes"][0]["value"]["messages"][0]["contacts"][0]
    card["phones"][0]["wa_id"] = SITI
    [own] = parse_notification(payload).messages
    assert (own.phone, own.own) == ("+" + SITI, True)


def test_media_is_other_and_reactions_are_ignored() -> None:
    assert parsed("image_message").kind == "other"
    payload = fixture("text_message")
    message = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    message.update(type="reaction", reaction={"message_id": "wamid.x", "emoji": "👍"})
    assert parse_notification(payload).messages == ()


def test_statuses_and_a_failure_with_its_error_code() -> None:
    for state in ("sent", "delivered", "read"):
        [status] = parse_notification(fixture(f"status_{state}"), NUMBER_ID).statuses
        assert status.status == state and status.error_code is None
    [failed] = parse_notification(fixture("status_failed"), NUMBER_ID).statuses
    assert failed == Status(failed.id, "failed", 131047, "Re-engagement message")


def test_another_business_number_and_other_fields_are_ignored() -> None:
    assert parse_notification(fixture("text_message"), "999").messages == ()
    other_field = fixture("text_message")
    other_field["entry"][0]["changes"][0]["field"] = "account_update"
    assert parse_notification(other_field).messages == ()
    assert parse_notification({"object": "page", "entry": []}).messages == ()


def test_malformed_parts_are_skipped_and_a_non_object_refused() -> None:
    broken = fixture("text_message")
    value = broken["entry"][0]["changes"][0]["value"]
    value["messages"] = [{"type": "text"}, "x", None, *value["messages"]]
    value["statuses"] = [{"status": "read"}, 3]
    notification = parse_notification(broken)
    assert [m.text for m in notification.messages] == ["cek saldo"]
    assert notification.statuses == ()
    assert parse_notification({"object": "whatsapp_business_account", "entry": "x"}).messages \
        == ()
    not_objects: tuple[object, ...] = ([], "text", 1, None)
    for payload in not_objects:
        with pytest.raises(ValueError, match="JSON object"):
            parse_notification(payload)


def test_every_fixture_is_json_in_metas_shape() -> None:
    for path in sorted(FIXTURES.glob("*.json")):
        payload = json.loads(path.read_text())
        if path.stem == "verification":
            assert set(payload) == {"hub.mode", "hub.challenge", "hub.verify_token"}
            continue
        assert payload["object"] == "whatsapp_business_account", path.name
        change = payload["entry"][0]["changes"][0]
        assert change["field"] == "messages"
        assert change["value"]["metadata"]["phone_number_id"] == NUMBER_ID


def test_the_signature_is_an_hmac_of_the_raw_body() -> None:
    body = b'{"object": "whatsapp_business_account"}'
    header = sign("secret", body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert signature_ok("secret", body, header)
    assert signature_ok("secret", body, header.upper().replace("SHA256=", "sha256="))
    assert not signature_ok("secret", body + b"\n", header)
    assert not signature_ok("other", body, header)
    assert not signature_ok("secret", body, None)
    assert not signature_ok("", body, sign("", body))  # no secret configured: nothing passes
    assert not signature_ok("secret", body, header.removeprefix("sha256="))
    # a header that was not UTF-8 on the wire (aiohttp hands it over with lone surrogates)
    assert not signature_ok("secret", body, "sha256=\udcff" + header[8:])


def test_a_message_ref_hides_the_wamid() -> None:
    wamid = parsed("text_message").id
    ref = message_ref(wamid)
    assert len(ref) == 24 and wamid not in ref and ref == message_ref(wamid)
    assert len(message_ref("wamid.x\ud800")) == 24  # unencodable text still has a name
