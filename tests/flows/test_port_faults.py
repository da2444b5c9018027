"""Port failures share one base class; the engine answers by the nearest known class."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest

from flows import ports
from flows.engine import FAULT_MESSAGES, Engine, fault_message
from flows.i18n import Catalog
from flows.ports import (
    BalanceServiceUnavailable,
    DatabaseUnavailable,
    DeskUnavailable,
    IdentityMatch,
    OtpDeliveryFailed,
    PortUnavailable,
    SessionBusy,
    StoreUnavailable,
)
from tests.flows.conftest import SITI, Chat, World


@pytest.mark.parametrize("error", [StoreUnavailable, SessionBusy, DatabaseUnavailable,
                                   BalanceServiceUnavailable, OtpDeliveryFailed,
                                   DeskUnavailable])
def test_every_port_error_is_a_port_unavailable(error: type[Exception]) -> None:
    assert issubclass(error, PortUnavailable)
    assert fault_message(error("down")) is not None


def test_every_failure_class_the_ports_module_defines_derives_from_the_base() -> None:
    failures = [value for value in vars(ports).values()
                if isinstance(value, type) and issubclass(value, Exception)
                and value.__module__ == ports.__name__]
    assert not issubclass(ports.AlreadySeen, PortUnavailable), "a repeat is no failure"
    assert {e for e in failures if e is not ports.AlreadySeen} == {
        PortUnavailable, StoreUnavailable, SessionBusy, DatabaseUnavailable,
        BalanceServiceUnavailable, OtpDeliveryFailed, DeskUnavailable}


class TimedOut(BalanceServiceUnavailable):
    """A backend's own, finer failure."""


class SlowerStill(TimedOut):
    """Two levels below the class the engine knows."""


class QueueFull(PortUnavailable):
    """A port failure the engine has no message of its own for."""


def test_a_subclass_gets_its_parents_message() -> None:
    parent = FAULT_MESSAGES[BalanceServiceUnavailable]
    assert fault_message(TimedOut()) == parent
    assert fault_message(SlowerStill()) == parent
    assert fault_message(QueueFull()) == FAULT_MESSAGES[PortUnavailable]
    assert fault_message(SessionBusy()) == FAULT_MESSAGES[PortUnavailable]
    assert fault_message(ZeroDivisionError()) is None


class _TimingOutBalance:
    async def verify_identity(self, nik: str, kpj: str, birth_date: date) -> IdentityMatch | None:
        raise SlowerStill("timed out")


async def test_the_engine_answers_a_subclass_politely_and_keeps_the_step(world: World) -> None:
    faulty = Engine(sessions=world.store, catalog=Catalog(strict=True),
                    ports=dataclasses.replace(world.engine._ports,  # noqa: SLF001
                                              balance=_TimingOutBalance()))  # type: ignore[arg-type]
    chat = Chat(faulty, world.outbox)
    await chat.say("/daftar")
    await chat.press("reg:agree")
    await chat.say(SITI["nik"])
    await chat.say(SITI["kpj"])
    text = await chat.say(SITI["birth"])
    assert "tidak dapat dihubungi" in text, "the balance service's own message"
    assert "terjadi gangguan" not in text, "not the message of an unexpected fault"
