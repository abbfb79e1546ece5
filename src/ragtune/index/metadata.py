"""The metadata postings of an index state: filters turned into a boolean row mask before any ranking happens.

A filter is {"field": value} or {"field": [v1, v2]}; fields are chunk.metadata keys plus "doc_id" and
"source". A row matches a field when its value is one of the wanted values; a list-valued metadata field
(e.g. access groups) matches when it shares at least one value. All fields must match (AND). The key
ACCESS_FIELD takes a caller's groups: public rows plus rows sharing one (ragtune.access, the server's rule).
Values compare as text for scalars, so the CLI's `--filter year=2020` matches an integer 2020.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ragtune.access import ACCESS_FIELD, document_groups
from ragtune.errors import InputError
from ragtune.types import Chunk

SPECIAL_FIELDS = ("doc_id", "source")


def value_key(value: Any) -> str:
    """Canonical text of a scalar metadata or filter value ('x' -> 'x', 2020 -> '2020', True -> 'true')."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _row_values(chunk: Chunk, field: str) -> list[Any]:
    if field in SPECIAL_FIELDS:
        return [getattr(chunk, field)]
    if field not in chunk.metadata:
        return []
    value = chunk.metadata[field]
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    return [value]


class MetadataIndex:
    """field -> value -> rows, built lazily per field, so each filter costs a few array unions."""

    def __init__(self, chunks: Sequence[Chunk]):
        self._chunks = chunks
        self._fields: dict[str, dict[str, np.ndarray]] = {}
        self._access: tuple[np.ndarray, dict[str, np.ndarray]] | None = None  # built on the first ACCESS_FIELD

    def _field(self, field: str) -> dict[str, np.ndarray]:
        if field not in self._fields:
            postings: dict[str, list[int]] = {}
            for row, chunk in enumerate(self._chunks):
                for value in _row_values(chunk, field):
                    postings.setdefault(value_key(value), []).append(row)
            self._fields[field] = {v: np.asarray(rows, dtype=np.int64) for v, rows in postings.items()}
        return self._fields[field]

    def mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """(n,) bool of rows matching every field, or None when there is no filter."""
        if not filters:
            return None
        if not hasattr(filters, "items"):
            raise InputError(f"filters must be a mapping of field -> value(s), got {filters!r}")
        mask = np.ones(len(self._chunks), dtype=bool)
        for field, wanted in filters.items():
            values = list(wanted) if isinstance(wanted, (list, tuple, set, frozenset)) else [wanted]
            if field == ACCESS_FIELD:
                mask &= self._access_mask(values)
                continue
            postings = self._field(str(field))
            field_mask = np.zeros(len(self._chunks), dtype=bool)
            for value in values:
                rows = postings.get(value_key(value))
                if rows is not None:
                    field_mask[rows] = True
            mask &= field_mask
        return mask

    def _access_mask(self, groups: Sequence[Any]) -> np.ndarray:
        """Rows a caller holding `groups` may see: public rows, or rows sharing one of the groups."""
        if self._access is None:
            public = np.zeros(len(self._chunks), dtype=bool)
            postings: dict[str, list[int]] = {}
            for row, chunk in enumerate(self._chunks):
                row_groups = document_groups(chunk.metadata)
                public[row] = not row_groups
                for group in row_groups:
                    postings.setdefault(group, []).append(row)
            self._access = (public, {g: np.asarray(rows, dtype=np.int64) for g, rows in postings.items()})
        public, postings = self._access
        mask = public.copy()
        for group in groups:
            rows = postings.get(str(group))
            if rows is not None:
                mask[rows] = True
        return mask
