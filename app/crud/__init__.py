"""The generic CRUD service: one class serves every declared table.

It knows SQLAlchemy and the declarations in app.resources, and nothing of Flask
requests or HTML. It is the only place that builds filter and sort SQL and the only
path for writes. Errors are typed so views can map them to 400/404/409/422/503.

The parts, in the order a request meets them:

    fields    field kinds (Text, Integer, Number, Reference) and the declaration
              types app/resources.py is written in (Field, Filter, Resource...)
    query     the query string -> ListQuery (search, filters, sort, page); Page
    select    the one WHERE / ORDER BY builder, full-text search included
    plan      how a page is read: sort-index walks, ids-first deep pages,
              summaries, the export cursor
    counts    row counts: counter rows, the count cache, count(*)
    validate  input against a declaration; the merge test of concurrent edits
    tx        the write transaction: import gate, writer queue, typed refusals
    changes   the change log every write writes; undo and redo of a change set
    trash     deletes logged, their Undo offers (tokens), put back
    copies    copied fields (a rating's movie_name), kept by every write
    bulk      multi-row INSERT / UPDATE and index rebuilds for imports
    lookup    many-row lookups by id or key, for imports
    dialect   every SQLite / PostgreSQL difference, one object per database
    errors    the errors views map to HTTP statuses
    schema    migration helpers: a new table's row counter and search index
    service   CrudService[M], the facade the views call
    part      Part, the session, declaration and dialect facade and parts hold
"""

from app.crud.changes import ChangeLog, Since, UndoRefused, acting_as, set_author
from app.crud.counts import CountCache
from app.crud.errors import (
    Conflict,
    NotFound,
    QueryError,
    ServiceError,
    ValidationError,
    WriteBusy,
)
from app.crud.fields import (
    FORBIDDEN_CHARS,
    Child,
    Field,
    FieldKind,
    Filter,
    Integer,
    Number,
    Reference,
    Resource,
    Summary,
    Text,
    largest_id,
)
from app.crud.query import MAX_SORT_KEYS, ListQuery, Page, SortKey, format_value
from app.crud.service import CrudService

__all__ = [
    "FORBIDDEN_CHARS",
    "MAX_SORT_KEYS",
    "ChangeLog",
    "Child",
    "Conflict",
    "CountCache",
    "CrudService",
    "Field",
    "FieldKind",
    "Filter",
    "Integer",
    "ListQuery",
    "NotFound",
    "Number",
    "Page",
    "QueryError",
    "Reference",
    "Resource",
    "ServiceError",
    "Since",
    "SortKey",
    "Summary",
    "Text",
    "UndoRefused",
    "ValidationError",
    "WriteBusy",
    "acting_as",
    "format_value",
    "largest_id",
    "set_author",
]
