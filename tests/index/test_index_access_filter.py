"""The folder index applies the server's access rule (ragtune.access) on its metadata postings, before ranking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ragtune.access import ACCESS_FIELD, document_groups
from ragtune.index.metadata import MetadataIndex
from ragtune.types import Chunk

# Every shape a document's groups take in metadata: missing, null, "", one name, a list (with empties).
GROUP_VALUES = st.one_of(st.just(None), st.just(""), st.sampled_from(["hr", "eng", "null"]),
                         st.lists(st.sampled_from(["hr", "eng", "ops", "", "5"]), max_size=3))


def _chunk(i: int, groups) -> Chunk:
    metadata = {} if groups == "missing" else {"groups": groups}
    return Chunk(chunk_id=f"d{i}#0", doc_id=f"d{i}", text="x", metadata=metadata)


@given(rows=st.lists(st.one_of(st.just("missing"), GROUP_VALUES), min_size=1, max_size=12),
       caller=st.lists(st.sampled_from(["hr", "eng", "ops", "legal", "5", "null"]), max_size=3))
def test_access_mask_is_the_servers_rule(rows, caller):
    chunks = [_chunk(i, g) for i, g in enumerate(rows)]
    mask = MetadataIndex(chunks).mask({ACCESS_FIELD: caller})
    expected = [not document_groups(c.metadata) or bool(document_groups(c.metadata) & set(caller)) for c in chunks]
    assert mask.tolist() == expected


def test_access_ands_with_other_fields():
    chunks = [_chunk(0, ["hr"]), _chunk(1, None), _chunk(2, ["eng"])]
    index = MetadataIndex(chunks)
    assert index.mask({ACCESS_FIELD: ["hr"], "doc_id": ["d0", "d2"]}).tolist() == [True, False, False]
    assert index.mask({ACCESS_FIELD: []}).tolist() == [False, True, False]  # no groups: public only
