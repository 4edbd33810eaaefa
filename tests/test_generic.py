"""The service's whole contract on a third, test-only table: no new service code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.crud import (
    Conflict,
    CrudService,
    Field,
    Filter,
    Integer,
    NotFound,
    Number,
    QueryError,
    Resource,
    Text,
    ValidationError,
)
from app.db import db


class ScratchBase(DeclarativeBase):
    """A metadata of its own, so the app's migrations never see this table."""


class Book(ScratchBase):
    """A book: the test-only table."""

    __tablename__ = "test_books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(50))
    pages: Mapped[int] = mapped_column(sa.Integer)
    price: Mapped[float | None] = mapped_column(sa.Float, nullable=True)
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


BOOKS = Resource(
    name="test_books",
    model=Book,
    singular="book",
    fields=(
        Field("title", "Title", Text(50), sortable=True, searchable=True),
        Field("pages", "Pages", Integer(1, 5000), sortable=True),
        Field("price", "Price", Number(0, 1000, places=2, required=False)),
    ),
    default_sort=("-pages",),
    filters=(Filter("max_pages", "pages", "le", "Max pages", Integer(1, 5000)),),
)


@pytest.fixture
def books(app: Flask) -> Iterator[CrudService]:
    """The service for the test-only table, with its table created."""
    with app.app_context():
        ScratchBase.metadata.create_all(db.engine)
        yield CrudService(BOOKS, db.session)
        db.session.remove()
        ScratchBase.metadata.drop_all(db.engine)


def test_whole_contract_on_a_third_table(books: CrudService) -> None:
    short = books.create({"title": "Short", "pages": "90", "price": "9.99"})
    long = books.create({"title": "Long", "pages": "900"})
    assert books.get(short.id).price == 9.99

    page = books.list(books.parse_query({}))
    assert [b.title for b in page.items] == ["Long", "Short"]
    page = books.list(books.parse_query({"max_pages": "100"}))
    assert [b.title for b in page.items] == ["Short"]
    page = books.list(books.parse_query({"q": "lon", "sort": "title"}))
    assert [b.title for b in page.items] == ["Long"]

    with pytest.raises(ValidationError) as err:
        books.create({"title": "", "pages": "0", "price": "1.005"})
    assert err.value.errors == {
        "title": "Title is required.",
        "pages": "Pages must be between 1 and 5000.",
        "price": "Price can have at most 2 decimal place.",
    }
    with pytest.raises(QueryError):
        books.parse_query({"sort": "price"})  # not declared sortable

    books.update(long.id, {"pages": "901"}, version=1)
    with pytest.raises(Conflict):
        books.update(long.id, {"pages": "902"}, version=1)
    assert books.get(long.id).pages == 901

    columns = [getattr(Book, name) for name in BOOKS.exported]
    query = books.parse_query({"sort": "pages"})
    rows = [r for b in books.reader.fetch_batches(query, *columns) for r in b]
    assert rows == [(short.id, "Short", 90, 9.99), (long.id, "Long", 901, None)]

    token, _ = books.trash(short.id)
    with pytest.raises(NotFound):
        books.get(short.id)
    books.undo(token)
    assert books.get(short.id).title == "Short"
