"""Compact sets an import remembers a file in: ids seen, and match_on key hashes."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable

import sqlalchemy as sa

from app.crud import CrudService


class IdSet:
    """A set of positive ids: a bitmap for the usual small ids, compact beyond.

    Ids below BITMAP_LIMIT are bits of one bytearray (2 MB at most: a byte per
    8 ids up to the largest seen). Larger ones are grouped by id >> 20, and a
    group keeps the low 20 bits in a sorted array('I') until it holds
    ARRAY_LIMIT of them, then as a 128 KB bitmap: about 4 bytes an id, and at
    most 2,048 groups below 2**31. 1,500,000 random ids below 2**31 take 6 MB;
    a Python set of them took ~100 MB (most of issue 11's 230 MB).
    """

    BITMAP_LIMIT = 1 << 24
    ARRAY_LIMIT = 1 << 15  # 128 KB as an array: from here a bitmap is no larger

    def __init__(self) -> None:
        self.bits = bytearray()
        self.groups: dict[int, array[int] | bytearray] = {}

    def add(self, value: int) -> None:
        """Add an id."""
        if value < self.BITMAP_LIMIT:
            index = value >> 3
            if index >= len(self.bits):
                grow = max(index + 1 - len(self.bits), len(self.bits))
                self.bits.extend(bytes(grow))
            self.bits[index] |= 1 << (value & 7)
            return
        high, low = value >> 20, value & 0xFFFFF
        group = self.groups.get(high)
        if group is None:
            self.groups[high] = array("I", (low,))
        elif isinstance(group, bytearray):
            group[low >> 3] |= 1 << (low & 7)
        else:
            at = bisect_left(group, low)
            if at == len(group) or group[at] != low:
                group.insert(at, low)
                if len(group) >= self.ARRAY_LIMIT:
                    bits = bytearray(1 << 17)
                    for member in group:
                        bits[member >> 3] |= 1 << (member & 7)
                    self.groups[high] = bits

    def __contains__(self, value: int) -> bool:
        if value < self.BITMAP_LIMIT:
            index = value >> 3
            return index < len(self.bits) and bool(
                self.bits[index] & (1 << (value & 7))
            )
        group = self.groups.get(value >> 20)
        if group is None:
            return False
        low = value & 0xFFFFF
        if isinstance(group, bytearray):
            return bool(group[low >> 3] & (1 << (low & 7)))
        at = bisect_left(group, low)
        return at < len(group) and group[at] == low


class HashSet:
    """A set of 64-bit hashes in about eight bytes each (a Python set: ~70).

    4,096 sorted array('Q') by the top 12 bits: a few hundred entries each at a
    million hashes, so an insertion moves a few KB at most.
    """

    def __init__(self) -> None:
        self.groups: dict[int, array[int]] = {}

    def add(self, value: int) -> bool:
        """Add a hash (any int: it is taken modulo 2**64); False if it was there."""
        value &= _MASK64
        group = self.groups.get(value >> 52)
        if group is None:
            self.groups[value >> 52] = array("Q", (value,))
            return True
        at = bisect_left(group, value)
        if at == len(group) or group[at] != value:
            group.insert(at, value)
            return True
        return False

    def __contains__(self, value: int) -> bool:
        value &= _MASK64
        group = self.groups.get(value >> 52)
        if group is None:
            return False
        at = bisect_left(group, value)
        return at < len(group) and group[at] == value


_MASK64 = (1 << 64) - 1
# Match_on key hashes kept in memory (~8.5 bytes each: 18 MB); the rest go to a
# temporary table. A 64 MB movies file of realistic lines holds under 2 M rows and
# never spills; one of the shortest lines ("a1,d,") holds 8.4 M, whose preview
# grew the peak RSS by 93 MB with every hash in memory, 31 MB with this budget
# (issue 11: an import's peak RSS growth stays under 64 MB at the upload limit).
KEY_HASHES_IN_MEMORY = 1 << 21


class SeenKeys:
    """Hashes of the match_on keys a file has shown: in memory, then in the database.

    Up to KEY_HASHES_IN_MEMORY hashes live in a HashSet. Past it, new ones wait
    in `pending` until the batch ends (flush), then go to a temporary table;
    before each batch, prefetch() asks that table which of the batch's hashes it
    holds, so a row's test stays a lookup in memory. Only files past the budget
    pay for the table: two statements a batch.
    """

    TABLE = "reeltable_import_seen_keys"

    def __init__(self, svc: CrudService) -> None:
        self.svc = svc
        self.memory = HashSet()
        self.size = 0
        self.budget = KEY_HASHES_IN_MEMORY
        self.spilled = False
        self.hits: set[int] = set()  # hashes of this batch found in the table
        self.pending: set[int] = set()  # added since the last flush, past budget

    def add(self, value: int) -> None:
        """Add a hash (any int: it is taken modulo 2**64)."""
        value &= _MASK64
        if self.size < self.budget:  # so nothing is in the table yet
            self.size += self.memory.add(value)
        elif value not in self.memory and value not in self.hits:
            self.pending.add(value)

    def __contains__(self, value: int) -> bool:
        value &= _MASK64
        return value in self.memory or value in self.hits or value in self.pending

    def prefetch(self, values: Iterable[int]) -> None:
        """Look up which of a batch's hashes the table holds (before the batch)."""
        if not self.spilled:
            return
        wanted = [_signed(v & _MASK64) for v in values]
        found = sa.text(f"SELECT h FROM {self.TABLE} WHERE h IN :hashes")
        found = found.bindparams(sa.bindparam("hashes", expanding=True))
        connection = self.svc.session.connection()
        self.hits = {
            h & _MASK64 for (h,) in connection.execute(found, {"hashes": wanted})
        }

    def flush(self) -> None:
        """Move the hashes added past the budget to the table (after a batch)."""
        if not self.pending:
            return
        connection = self.svc.session.connection()
        if not self.spilled:
            # IF NOT EXISTS and DELETE: an import that failed may have left it on
            # this pooled connection (SQLite keeps a temporary table until then).
            connection.execute(
                sa.text(
                    f"CREATE TEMPORARY TABLE IF NOT EXISTS {self.TABLE}"
                    " (h BIGINT PRIMARY KEY)"
                )
            )
            connection.execute(sa.text(f"DELETE FROM {self.TABLE}"))
            self.spilled = True
        # None is there already: add() kept out the table's (prefetched) hashes.
        insert = sa.text(f"INSERT INTO {self.TABLE} (h) VALUES (:h)")
        connection.execute(insert, [{"h": _signed(v)} for v in self.pending])
        self.pending.clear()
        self.hits.clear()

    def close(self) -> None:
        """Drop the table, if there is one."""
        if self.spilled:
            self.svc.session.connection().execute(
                sa.text(f"DROP TABLE IF EXISTS {self.TABLE}")
            )
            self.spilled = False


def _signed(value: int) -> int:
    """An unsigned 64-bit value as the signed one a BIGINT column holds."""
    return value - (1 << 64) if value >> 63 else value
