"""A file on the console: written under the files directory, its path printed with the
caption; and the engine carrying a flow's file from ``Say`` to ``Reply``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from channels.console.channel import FILE_SAVED, ConsoleChannel, Handler, save_file
from flows import routes
from flows.engine import Engine
from flows.flow import Context, Flow, Outcome, say, step
from flows.i18n import Catalog
from flows.menu import MENU
from flows.types import Attachment, Button, Event, Reply, Say, SayKind, SessionKey, Text
from storage.sessions import MemorySessionStore
from tests.fakes.media_samples import PDF, PNG
from tests.flows.conftest import world_on

CATALOG = Catalog()
STATEMENT = Attachment("laporan-iuran-2025.pdf", "application/pdf", PDF)
AT = datetime(2026, 12, 3, 18, 30, 5, tzinfo=UTC)


class Script:
    """Typed lines in, printed text out."""

    def __init__(self, *lines: str) -> None:
        self.lines = list(lines)
        self.out: list[str] = []

    async def read(self) -> str | None:
        return self.lines.pop(0) if self.lines else None

    def write(self, text: str) -> None:
        self.out.append(text)


def _handle(*replies: Reply) -> Handler:
    """An engine stand-in answering every event with ``replies``."""
    async def handle(_key: SessionKey, _event: Event) -> list[Reply]:
        return list(replies)
    return handle


async def test_the_file_is_written_and_its_path_printed(tmp_path: Path) -> None:
    files = tmp_path / "data" / "files"  # made by the channel
    script = Script()
    reply = Reply("Laporan iuran 2025", kind=SayKind.DOCUMENT, locale="id", attachment=STATEMENT)
    await ConsoleChannel(_handle(reply), read=script.read, write=script.write,
                         files_dir=files).run()
    [written] = list(files.iterdir())
    assert written.name.endswith("-laporan-iuran-2025.pdf")
    assert written.read_bytes() == PDF
    printed = "\n".join(script.out)
    assert "bot> Laporan iuran 2025" in printed
    assert CATALOG.render(Text(FILE_SAVED, {"path": str(written)}), "id") in printed


async def test_a_file_without_caption_prints_its_path_and_buttons(tmp_path: Path) -> None:
    script = Script()
    chart = Attachment("grafik.png", "image/png", PNG)
    reply = Reply("", ((Button("Again", "chart:again"),),), SayKind.PHOTO, "en", chart)
    await ConsoleChannel(_handle(reply), read=script.read, write=script.write,
                         files_dir=tmp_path).run()
    [written] = [p for p in tmp_path.iterdir() if p.suffix == ".png"]
    assert written.read_bytes() == PNG
    printed = "\n".join(script.out)
    assert f"bot> {CATALOG.render(Text(FILE_SAVED, {'path': str(written)}), 'en')}" in printed
    assert "[1] Again" in printed


def test_files_of_one_second_never_overwrite_each_other(tmp_path: Path) -> None:
    first = save_file(tmp_path, STATEMENT, AT)
    second = save_file(tmp_path, STATEMENT, AT)
    third = save_file(tmp_path, Attachment("README", "text/plain", b"x"), AT)
    assert first.name == "20261203T183005Z-laporan-iuran-2025.pdf"
    assert second.name == "20261203T183005Z-laporan-iuran-2025-2.pdf"
    assert third.name == "20261203T183005Z-README"
    assert first.read_bytes() == second.read_bytes() == PDF


@pytest.mark.parametrize("name", ["../../etc/passwd", "..\\..\\boot.ini", "/tmp/abs.pdf"])
def test_a_file_name_cannot_leave_the_directory(tmp_path: Path, name: str) -> None:
    inside = tmp_path / "files"
    path = save_file(inside, Attachment(name, "application/pdf", PDF), AT)
    assert path.parent == inside


# --- the engine carries a flow's file -------------------------------------------------------


async def _send_file(ctx: Context) -> Outcome:
    caption = say("Your statement")
    return Outcome(MENU, (Say(caption.text, kind=SayKind.DOCUMENT, attachment=STATEMENT),))


FILES = Flow("files", entries={"files": step(_send_file, MENU)})


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[Engine]:
    async with world_on(tmp_path, MemorySessionStore()) as world:
        yield Engine(sessions=world.store, ports=world.engine._ports,  # noqa: SLF001
                     catalog=CATALOG, flows=(*routes.FLOWS, FILES))


async def test_a_flows_file_reaches_the_console(engine: Engine, tmp_path: Path) -> None:
    replies = await engine.handle(SessionKey("console", "local"), Event.button("go:files"))
    [reply] = [r for r in replies if r.attachment is not None]
    assert (reply.kind, reply.text, reply.attachment) == (SayKind.DOCUMENT, "Your statement",
                                                          STATEMENT)
    script, files = Script(), tmp_path / "files"
    console = ConsoleChannel(engine.handle, read=script.read, write=script.write,
                             files_dir=files)
    await console.send(Event.button("go:files"))
    [written] = list(files.iterdir())
    assert written.read_bytes() == PDF
    assert str(written) in "\n".join(script.out)
