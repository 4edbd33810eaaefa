"""Configuration precedence: defaults, instance config.py, environment, test config."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import create_app
from app.config import DEFAULT_PAGE_SIZE, normalise_database_url


def test_defaults_use_sqlite_in_instance_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    app = create_app(instance_path=str(tmp_path))
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(
        tmp_path / "reeltable.sqlite3"
    )
    assert app.config["PAGE_SIZE"] == DEFAULT_PAGE_SIZE
    assert not app.testing


def test_secret_key_generated_once_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app(instance_path=str(tmp_path)).config["SECRET_KEY"]
    second = create_app(instance_path=str(tmp_path)).config["SECRET_KEY"]
    other = create_app(instance_path=str(tmp_path / "other")).config["SECRET_KEY"]
    assert len(first) == 64
    assert first == second
    assert first != other
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "config.py").write_text(
        "PAGE_SIZE = 20\nSECRET_KEY = 'from-instance'\n"
        "SQLALCHEMY_DATABASE_URI = 'sqlite:///instance.db'\n"
    )
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("PAGE_SIZE", raising=False)
    app = create_app(instance_path=str(tmp_path))
    assert app.config["PAGE_SIZE"] == 20
    assert app.config["SECRET_KEY"] == "from-instance"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///instance.db"

    monkeypatch.setenv("PAGE_SIZE", "30")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    app = create_app(instance_path=str(tmp_path))
    assert app.config["PAGE_SIZE"] == 30
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"

    app = create_app({"PAGE_SIZE": 40}, instance_path=str(tmp_path))
    assert app.config["PAGE_SIZE"] == 40


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d"),
        ("postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_database_url_normalised_to_psycopg3(url: str, expected: str) -> None:
    assert normalise_database_url(url) == expected
