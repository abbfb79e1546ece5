"""Document access groups: which chunks a caller may see, one rule for every index backend and the server.

A document whose metadata has no `groups` (missing, null, "" or an empty list) is PUBLIC. Otherwise a caller
sees it when they share at least one group with it. The filter key ACCESS_FIELD carries a caller's groups into
retrieval (`{ACCESS_FIELD: ["hr", "eng"]}`: public chunks plus those in hr or eng), so each backend applies the
rule before ranking — the folder index on its metadata postings, Milvus and PostgreSQL in the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUPS_FIELD = "groups"  # the document/chunk metadata field holding access groups
ACCESS_FIELD = "@access"  # filter key: the caller's groups


def document_groups(metadata: Mapping[str, Any] | None) -> frozenset[str]:
    """The access groups stored in a document's metadata (empty = public)."""
    value = metadata.get(GROUPS_FIELD) if metadata else None
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset({value}) if value else frozenset()
    return frozenset(str(v) for v in value if str(v))
