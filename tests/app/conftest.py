"""What the app tests share: settings on a temporary embedded deployment, and no setting of the
machine running the tests leaking into them."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment variable of this machine is read as a setting."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)


def embedded_settings(tmp_path: Path, **values: object) -> Settings:
    """The embedded default under ``tmp_path`` (SQLite, demo members), with ``values``."""
    base: dict[str, object] = {"data_dir": tmp_path / "data",
                               "database_url": f"sqlite:///{tmp_path / 'bot.db'}",
                               "seed_demo_members": True}
    return Settings(_env_file=None, **{**base, **values})  # type: ignore[arg-type]
