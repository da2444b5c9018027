"""Tests of the trained half of the classifier: the corpus and the model built from it, the
features, negation and contrast, dialect words, joined words, and the question back when two
intents are too close to choose."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from flows import intent_model
from flows.engine import Engine
from flows.i18n import Catalog
from flows.intent_model import IntentModel, char_words, symbols_of
from flows.intents import INTENTS, Intent, classify, classify_with, focus, normalise
from flows.types import Event, SessionKey
from nlu import build
from tests.flows.conftest import World

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "nlu/corpus/holdout.tsv"


def test_the_committed_model_was_built_from_this_corpus() -> None:
    model = intent_model.load()
    assert model is not None
    rows = build.corpus()
    assert model.version == build.version_of(rows, build.C), (
        "the corpus changed since the model was built: run `uv run python -m nlu.build`")
    assert set(model.classes) == set(INTENTS)


def test_the_corpus_is_labelled_with_intent_names_only_and_is_large() -> None:
    rows = build.corpus()
    assert {label for label, _ in rows} == set(INTENTS)
    assert len(rows) >= 8000
    counts = {name: sum(label == name for label, _ in rows) for name in INTENTS}
    assert min(counts.values()) >= 150, counts


def test_the_set_aside_part_is_not_in_the_training_corpus() -> None:
    training = {text.casefold().strip() for _, text in build.corpus()}
    held = [text for _, text in build.read_tsv(HOLDOUT)]
    assert len(held) >= 700
    assert not [text for text in held if text.casefold().strip() in training]


def test_building_is_deterministic(tmp_path: Path) -> None:
    rows = build.corpus()[::40]
    first, second = build.train(rows, 4.0), build.train(rows, 4.0)
    assert isinstance(first, IntentModel) and isinstance(second, IntentModel)
    intent_model.save(first, tmp_path / "a.json.gz")
    intent_model.save(second, tmp_path / "b.json.gz")
    assert (tmp_path / "a.json.gz").read_bytes() == (tmp_path / "b.json.gz").read_bytes()
    assert build.difference(first, second) == 0.0


def test_a_saved_model_loads_back_the_same(tmp_path: Path) -> None:
    model = IntentModel(("a", "b"), (0.5, -0.5), {"w:x": ((0, 1.25),), "c:<x>": ((1, -2.0),)},
                        version="v")
    path = tmp_path / "m.json.gz"
    intent_model.save(model, path)
    assert intent_model.load(path) == model
    with gzip.open(path, "rt", encoding="utf-8") as raw:
        assert '"format":2' in raw.read()


def test_a_model_of_another_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        IntentModel.from_json({"format": 99, "classes": [], "intercepts": [], "weights": {}})


def test_probabilities_are_a_softmax_ranked_best_first() -> None:
    model = IntentModel(("a", "b", "c"), (0.0, 0.0, 0.0), {"w:x": ((1, 2.0),)})
    ranked = model.probabilities({"w:x": 1.0})
    assert [name for name, _ in ranked] == ["b", "a", "c"]
    assert sum(p for _, p in ranked) == pytest.approx(1.0)
    assert ranked[1][1] == pytest.approx(ranked[2][1])


def test_without_a_model_the_rules_decide_alone() -> None:
    assert classify_with(None, "cek saldo").name == "check_balance"
    assert classify_with(None, "lorem ipsum").name == "unknown"


@pytest.mark.parametrize(("text", "focused"), [
    ("bukan riwayat, tapi saldo totalnya aja", "saldo totalnya aja"),
    ("gak mau cek saldo, mau ngobrol sama orang", "mau ngobrol sama orang"),
    ("not the history, just the total balance", "the total balance"),
    ("I don't want the balance, I want a person", "I want a person"),
    ("ga usah daftar, cuma mau tau iuran berapa persen", "mau tau iuran berapa persen"),
    ("gak jadi", "gak jadi"),
    ("saldo gak mau muncul", "saldo gak mau muncul"),
    ("my balance is not updated but contributions were deducted",
     "my balance is not updated but contributions were deducted"),
    ("bukan cuma logout, hapus juga datanya", "bukan cuma logout, hapus juga datanya"),
])
def test_focus_drops_what_the_member_does_not_want(text: str, focused: str) -> None:
    assert focus(text) == focused


@pytest.mark.parametrize(("text", "expected"), [
    ("not the history, just the total balance", "check_balance"),
    ("I don't want the balance, I want a person", "handoff"),
    ("bukan riwayat, saldo totalnya aja", "check_balance"),
    ("bukan riwayat tapi saldo", "check_balance"),
    ("bukan riwayat, tapi saldo", "check_balance"),
    ("gak mau cek saldo, mau ngomong sama petugas", "handoff"),
    ("iuran sudah dipotong tapi saldo belum nambah", "faq.balance_not_updated"),
    ("bulan lalu gak masuk ke saldo padahal gaji dipotong", "faq.balance_not_updated"),
    ("saldo bpjs kesehatan saya berapa", "faq.bpjs_kesehatan"),
    ("ada lowongan kerja di bpjs?", "unknown"),
    ("saldoku saiki piro", "check_balance"),
    ("carane jupuk jht piye", "faq.claim_jht"),
    ("kumaha nyairkeun jht", "faq.claim_jht"),
    ("ceksaldoo", "check_balance"),
    ("saldojht???", "check_balance"),
    ("matur nuwun", "thanks"),
    ("hatur nuhun", "thanks"),
    ("👍", "thanks"),
    ("back", "help"),
    ("ora sido", "cancel"),
    ("teu jadi", "cancel"),
])
def test_the_misses_named_by_the_issue(text: str, expected: str) -> None:
    assert classify(text).name == expected


@pytest.mark.parametrize(("text", "words"), [
    ("ceksaldoo", "cek saldo"), ("saldojht???", "saldo jht"), ("riwayatiuran", "riwayat iuran"),
    ("saldoku saiki piro", "saldo sekarang berapa"), ("iurane wis mlebu durung",
                                                       "iuran sudah masuk belum"),
    ("kumaha nyairkeun jht", "bagaimana cair jht"),
])
def test_dialect_and_joined_words_are_normalised(text: str, words: str) -> None:
    assert normalise(text) == words


def test_typed_words_and_symbols_for_the_character_features() -> None:
    assert char_words("Tolonggg!! KPJ 12345678901 th 2024") == [
        "tolongg", "kpj", "#d11", "th", "#d4"]
    assert symbols_of("mantap 👍🏻👍 🙏") == "👍🙏"


def test_every_answer_names_a_runner_up_and_stays_in_range() -> None:
    for text in ("cek saldo", "riwayat iuran", "halo", "qwerty", "apa itu"):
        intent = classify(text)
        assert intent.name in INTENTS and 0.0 <= intent.score <= 1.0
        assert intent.runner_up in (*INTENTS, "")
        assert intent.runner_up != intent.name


def _torn(text: str) -> Intent:
    """A classifier that cannot choose between the balance and the history."""
    return Intent("check_balance", 0.45, runner_up="history", alternative="history")


def _engine(world: World, classifier: object) -> Engine:
    return Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                  catalog=Catalog(strict=True), classifier=classifier)  # type: ignore[arg-type]


@pytest.mark.parametrize(("locale", "question", "labels"), [
    ("id", "Maaf, saya kurang paham maksud Anda. Apakah salah satu di bawah ini?",
     ["Cek Saldo", "Riwayat Iuran", "Lainnya"]),
    ("en", "I'm not sure what you mean. Is it one of these?",
     ["Check balance", "Contribution history", "Something else"]),
])
async def test_two_close_intents_get_a_question_with_both_as_buttons(
        world: World, locale: str, question: str, labels: list[str]) -> None:
    engine = _engine(world, _torn)
    key = SessionKey("test", f"torn-{locale}")
    await engine.handle(key, Event.message("/start", language_code=locale))
    await engine.handle(key, Event.button(f"lang:{locale}"))
    replies = await engine.handle(key, Event.message("saldo atau riwayat"))
    assert replies[-1].text == question
    assert [b.label for row in replies[-1].buttons for b in row] == labels
    assert [b.data for row in replies[-1].buttons for b in row] == [
        "go:check_balance", "go:history", "go:menu"]


async def test_pressing_an_offered_intent_runs_it(world: World) -> None:
    engine = _engine(world, _torn)
    key = SessionKey("test", "torn-press")
    await engine.handle(key, Event.message("saldo atau riwayat", language_code="en"))
    replies = await engine.handle(key, Event.button("go:history"))
    plain = await _engine(world, classify).handle(
        SessionKey("test", "plain"), Event.button("go:history", language_code="en"))
    assert [r.text for r in replies] == [r.text for r in plain]


async def test_a_half_recognised_message_is_offered_its_one_intent(world: World) -> None:
    def half(text: str) -> Intent:
        return Intent("unknown", 0.2, runner_up="history", alternative="history")

    replies = await _engine(world, half).handle(SessionKey("test", "half"),
                                                Event.message("did the boss", language_code="en"))
    assert replies[-1].text == "I'm not sure what you mean. Is it this?"
    assert [b.data for row in replies[-1].buttons for b in row] == ["go:history", "go:menu"]


async def test_a_close_call_between_unlabelled_intents_shows_the_menu(world: World) -> None:
    def odd(text: str) -> Intent:
        return Intent("weather", 0.4, runner_up="sports", alternative="sports")

    replies = await _engine(world, odd).handle(SessionKey("test", "odd"),
                                               Event.message("hmm", language_code="en"))
    assert replies[0].text == "I'm not sure what you mean."
    assert any(b.data == "go:check_balance" for row in replies[-1].buttons for b in row)


def test_the_set_aside_part_stays_above_the_target() -> None:
    """A regression guard, not a score: the set-aside part was scored once before this test
    was written (97.4%, asking on 2.1%); the model is never tuned on it."""
    rows = build.read_tsv(HOLDOUT)
    results = [(label, classify(text)) for label, text in rows]
    hits = sum(label == got.name for label, got in results)
    asked = sum(got.alternative is not None for _, got in results)
    assert hits / len(rows) >= 0.95
    assert asked / len(rows) <= 0.10


def test_a_short_message_is_classified_once_and_a_long_one_every_time() -> None:
    assert classify("cek saldo dong") is classify("cek saldo dong")
    long = "saya mau tanya " * 20 + "saldo jht saya berapa"
    assert classify(long) is not classify(long)
    assert classify(long) == classify(long)
