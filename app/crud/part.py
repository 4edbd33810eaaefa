"""Part: what the service and each of its parts over one table hold."""

from __future__ import annotations

from typing import Generic

from sqlalchemy.orm import Session

from app.crud.dialect import Dialect
from app.crud.fields import M, Resource


class Part(Generic[M]):
    """One table's share of the service: its session, declaration and database.

    The facade (CrudService) and the parts it builds (Snapshots, Bulk, Lookups)
    start from these three; each adds what its own job needs.
    """

    def __init__(
        self, session: Session, resource: Resource[M], backend: Dialect
    ) -> None:
        self.session = session
        self.resource = resource
        self.model: type[M] = resource.model
        self.backend = backend
