"""The catalogue's tables: Movie and Rating, with constraints that mirror validation."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import base as _pg_base
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from app.db import Base

NAME_MAX = 200
DIRECTOR_MAX = 120
AUTHOR_MAX = 80


def _nonblank(column: str, max_len: int) -> sa.CheckConstraint:
    """CHECK that a text column holds 1..max_len characters and not only spaces."""
    return sa.CheckConstraint(
        f"length({column}) <= {max_len} AND trim({column}) <> ''",
        name=f"{column}_nonblank",
    )


class Timestamped:
    """Columns every row carries: a version for lost-update detection, timestamps."""

    version: Mapped[int] = mapped_column(
        sa.Integer, nullable=False, default=1, server_default=sa.text("1")
    )
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    )

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, object]:
        """Let the ORM add "AND version = :seen" to every UPDATE and bump it."""
        table: sa.Table = cls.__table__  # type: ignore[attr-defined]  # made by Base
        return {"version_id_col": table.c.version}


class Movie(Timestamped, Base):
    """A film: its name, director and an optional 0.0-10.0 rating."""

    __tablename__ = "movies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX), nullable=False)
    director: Mapped[str] = mapped_column(sa.String(DIRECTOR_MAX), nullable=False)
    rating: Mapped[float | None] = mapped_column(sa.Float, nullable=True)

    ratings: Mapped[list[Rating]] = relationship(
        back_populates="movie", passive_deletes=True, cascade="all, delete-orphan"
    )

    __table_args__ = (
        _nonblank("name", NAME_MAX),
        _nonblank("director", DIRECTOR_MAX),
        # One decimal place: rating * 10 is a whole number (works for REAL and float8).
        sa.CheckConstraint(
            "rating IS NULL OR (rating >= 0 AND rating <= 10"
            " AND rating * 10 = round(rating * 10))",
            name="rating_range",
        ),
        # (key, id) so sorting with the id tie-breaker reads straight off the index.
        # INCLUDE (name): PostgreSQL reads an expression index alone (an index-only
        # scan, as deep pages do) only if it also holds the column (migration 0009).
        sa.Index(
            "ix_movies_name_id",
            func.lower(sa.text("name")),
            "id",
            postgresql_include=["name"],
        ),
        # ... plus the searched columns: a search walking these in sort order tests
        # rows in the index and seeks only the ones it keeps (migration 0007).
        sa.Index(
            "ix_movies_director_search",
            func.lower(sa.text("director")),
            "id",
            "name",
            "director",
        ),
        sa.Index("ix_movies_rating_search", "rating", "id", "name", "director"),
        # An import matches rows without an id by name and director (migration 0012).
        sa.Index("ix_movies_name_director", "name", "director"),
        # Ids are never handed out twice, not even the deleted newest one's: an
        # editor still open on it, or its Undo, must not meet another row there.
        # PostgreSQL's sequences behave so already (migration 0011).
        {"sqlite_autoincrement": True},
    )

    def __repr__(self) -> str:
        return f"<Movie {self.id} {self.name!r}>"


class Rating(Timestamped, Base):
    """One person's 1-10 rating of a movie; movie_name mirrors the movie's name."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating: Mapped[int] = mapped_column(sa.Integer, nullable=False)
    author: Mapped[str] = mapped_column(sa.String(AUTHOR_MAX), nullable=False)
    movie_id: Mapped[int] = mapped_column(
        sa.ForeignKey("movies.id", ondelete="CASCADE"), nullable=False
    )
    # Denormalised as in the original project; kept equal to movies.name in every
    # write by its declaration (copied_from in app/resources.py; app/crud/copies.py).
    movie_name: Mapped[str] = mapped_column(sa.String(NAME_MAX), nullable=False)

    movie: Mapped[Movie] = relationship(back_populates="ratings")

    __table_args__ = (
        sa.CheckConstraint("rating >= 1 AND rating <= 10", name="rating_range"),
        _nonblank("author", AUTHOR_MAX),
        _nonblank("movie_name", NAME_MAX),
        sa.Index("ix_ratings_movie_id_id", "movie_id", "id"),
        # Covers a page's per-movie count and average (Reader.summaries).
        sa.Index("ix_ratings_movie_id_rating", "movie_id", "rating"),
        sa.Index("ix_ratings_rating_id", "rating", "id"),
        sa.Index(
            "ix_ratings_author_id",
            func.lower(sa.text("author")),
            "id",
            postgresql_include=["author"],
        ),
        sa.Index(
            "ix_ratings_movie_name_id",
            func.lower(sa.text("movie_name")),
            "id",
            postgresql_include=["movie_name"],
        ),
        {"sqlite_autoincrement": True},  # as movies (migration 0011)
    )

    def __repr__(self) -> str:
        return f"<Rating {self.id} {self.rating} by {self.author!r}>"


USER_NAME_MAX = 80


class User(Base):
    """An account that may write once accounts are on; the password is a KDF hash."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(USER_NAME_MAX), nullable=False)
    password_hash: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    created_at: Mapped[datetime] = mapped_column(
        sa.DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    __table_args__ = (
        _nonblank("name", USER_NAME_MAX),
        # Names are matched case-insensitively, so "Ana" and "ana" are one account.
        sa.Index("uq_users_name_lower", func.lower(sa.text("name")), unique=True),
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.name!r}>"


class UserSession(Base):
    """One sign-in, kept on the server so that signing out ends it (issue 12).

    The session cookie names it; sign-out deletes it ("Sign out everywhere": all of
    a user's), and one unused for SESSION_IDLE_DAYS expires. Times are Unix seconds.
    """

    __tablename__ = "user_sessions"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    created_at: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    last_seen: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)


# Long enough for any address in text form (IPv6 with a zone, or an IPv6 /64).
ADDRESS_MAX = 64


class SignInFailure(Base):
    """One failed sign-in, for the sign-in limits (app/signin_limits.py, issue 12).

    A table rather than process memory, so every worker and server counts the same
    failures. `account` is the name tried, lowered; `at` is Unix seconds. Rows older
    than the longest window are deleted as new ones are written.
    """

    __tablename__ = "sign_in_failures"

    # BIGINT on PostgreSQL: ids are used up by failures, which an attack makes fast.
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    account: Mapped[str] = mapped_column(sa.String(USER_NAME_MAX), nullable=False)
    address: Mapped[str] = mapped_column(sa.String(ADDRESS_MAX), nullable=False)
    at: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)

    __table_args__ = (
        # One per question asked: this pair, this address, this account (newest
        # first, so a limit reads at most its own amount of entries), and pruning.
        sa.Index("ix_sign_in_failures_account_address_at", "account", "address", "at"),
        sa.Index("ix_sign_in_failures_address_at", "address", "at"),
        sa.Index("ix_sign_in_failures_account_at", "account", "at"),
        sa.Index("ix_sign_in_failures_at", "at"),
    )

    def __repr__(self) -> str:
        return f"<SignInFailure {self.account!r} from {self.address} at {self.at}>"


class DeletedRow(Base):
    """A deleted row (with its children) kept briefly so the delete can be undone.

    A table rather than process memory, so any gunicorn worker can serve the undo.
    """

    __tablename__ = "deleted_rows"

    token: Mapped[str] = mapped_column(sa.String(43), primary_key=True)
    table_name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    payload: Mapped[str] = mapped_column(sa.Text, nullable=False)  # JSON snapshot
    # Epoch seconds: compares the same way on SQLite and PostgreSQL, no time zones.
    expires_at: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)

    def __repr__(self) -> str:
        return f"<DeletedRow {self.table_name} {self.token[:6]}…>"


class RowCount(Base):
    """A table's row count and version, kept exact by triggers (migrations 0006, 0008).

    Pages show "N of <table total>"; reading the total here costs one lookup where
    count(*) reads every row.
    """

    __tablename__ = "row_counts"

    table_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    # Bumped by every write to the table (migration 0008): keys CountCache.
    version: Mapped[int] = mapped_column(
        sa.BigInteger, nullable=False, server_default="0"
    )

    def __repr__(self) -> str:
        return f"<RowCount {self.table_name} {self.n}>"


class Xid8(sa.types.UserDefinedType[int]):
    """PostgreSQL's 64-bit transaction id type (xid8), read as an int."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        """The type's name in DDL."""
        return "xid8"

    def result_processor(self, dialect: Any, coltype: Any) -> Any:
        """The driver hands xid8 over as text: an int for Python."""
        return lambda value: None if value is None else int(value)


# Reflection (`flask db check`) then reads changes.xid back as this type rather
# than warning of an unknown one.
_pg_base.ischema_names.setdefault("xid8", Xid8)


class Change(Base):
    """One row changed by a write, in the change log (issue 14, migration 0017).

    The CRUD service writes these in the write's own transaction (app/crud/
    changes.py): a change set groups one write's rows (a save, a delete with its
    cascaded children, an import, an undo). `old`/`new` are compact JSON of the
    changed fields only; `at` is Unix milliseconds, to keep the row small.
    """

    __tablename__ = "changes"

    # The rowid on SQLite, never handed out twice (AUTOINCREMENT): "since id N".
    id: Mapped[int] = mapped_column(
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True
    )
    set_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    at: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    who: Mapped[str] = mapped_column(sa.String(USER_NAME_MAX), nullable=False)
    table_name: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    row_id: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    op: Mapped[str] = mapped_column(sa.String(6), nullable=False)
    old: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    new: Mapped[str | None] = mapped_column(sa.Text, nullable=True)
    version: Mapped[int | None] = mapped_column(sa.Integer, nullable=True)
    # PostgreSQL: the writing transaction's id, its default pg_current_xact_id()
    # (migration 0021): live polling finds a change that committed late by it.
    # SQLite: 0, never written (one writer: ids commit in order).
    xid: Mapped[int] = mapped_column(
        Xid8().with_variant(sa.BigInteger(), "sqlite"),
        nullable=False,
        server_default=sa.FetchedValue(),
    )

    __table_args__ = (
        sa.CheckConstraint("op IN ('create', 'update', 'delete')", name="op_known"),
        sa.Index("ix_changes_table_name", "table_name", "row_id", "id"),
        sa.Index("ix_changes_set_id", "set_id"),
        sa.Index("ix_changes_who", "who", "id"),
        sa.Index("ix_changes_at", "at"),
        # Holds no row on SQLite, where xid stays 0.
        sa.Index("ix_changes_xid", "xid", sqlite_where=sa.text("xid <> 0")),
        {"sqlite_autoincrement": True},
    )

    def __repr__(self) -> str:
        return f"<Change {self.id} {self.op} {self.table_name} {self.row_id}>"


class Import(Base):
    """An uploaded CSV between preview and import, and how its check or import went.

    A table rather than a folder or process memory (issue 15), so a preview made on
    one app server can be committed on another and any server shows its progress.
    `status` is checking, preview, importing, done or failed; `state` is JSON (the
    counts, the first invalid rows, notes, the change set). A job owns a running
    row while `lease_until` (Unix ms) lies ahead, renewing it as it works; a row
    whose lease ran out is claimable again. `claim` names the holder, so a job
    whose lease was taken over cannot mark the row done.
    """

    __tablename__ = "imports"

    token: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    resource: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    filename: Mapped[str] = mapped_column(sa.String(255), nullable=False)
    status: Mapped[str] = mapped_column(sa.String(10), nullable=False)
    state: Mapped[str] = mapped_column(sa.Text, nullable=False)
    size: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    phase: Mapped[str | None] = mapped_column(sa.String(10), nullable=True)
    done: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    total: Mapped[int] = mapped_column(sa.BigInteger, nullable=False)
    claim: Mapped[str | None] = mapped_column(sa.String(32), nullable=True)
    lease_until: Mapped[int | None] = mapped_column(sa.BigInteger, nullable=True)
    # Unix seconds: uploads older than a day are swept.
    created_at: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, index=True)

    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('checking', 'preview', 'importing', 'done', 'failed')",
            name="status_known",
        ),
    )

    def __repr__(self) -> str:
        return f"<Import {self.token[:6]}… {self.status}>"


class ImportChunk(Base):
    """One piece of an upload (IMPORT_CHUNK_BYTES of the file, zlib-compressed).

    Pieces rather than one blob, so neither storing nor reading an upload holds
    more than a piece of it in memory.
    """

    __tablename__ = "import_chunks"

    token: Mapped[str] = mapped_column(
        sa.String(32),
        sa.ForeignKey("imports.token", ondelete="CASCADE"),
        primary_key=True,
    )
    seq: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    data: Mapped[bytes] = mapped_column(sa.LargeBinary, nullable=False)

    def __repr__(self) -> str:
        return f"<ImportChunk {self.token[:6]}… {self.seq}>"
