"""Graph-based retrieval: an entity graph kept inside the index folder, and the graph-local / graph-global /
graph-hybrid retrieval modes (`open_retriever(index, "graph-hybrid")`, `ragtune search --mode graph-hybrid`).

extract.py        offline rule-based entity extraction and alias merging (default extractor "rules")
llm_extract.py    the optional LLM extractor ("llm:<model>")
store.py          the graph persisted in <index>/graph/, synced incrementally after every index commit
entity_graph.py   the in-memory graph: chunk incidence, co-occurrence edges, hub caps, personalised PageRank
communities.py    Louvain communities (networkx) and extractive summaries
retrieve.py       the three retrievers (Retriever protocol)
view.py           overview / neighbourhood / HTML view behind `ragtune graph show`

Importing this package is light: numpy/scipy/networkx load only when a graph is built. The graph follows index
commits by subscribing to them (ragtune.index.hooks) once a process has synced a graph; an entry point that
writes to an index calls `follow_index_commits()` first, so an existing graph is updated in the same commit.
"""


def follow_index_commits() -> None:
    """Keep the entity graph of every index this process writes to in step with its commits (idempotent)."""
    from ragtune.graph.store import on_index_commit
    from ragtune.index.hooks import on_commit

    on_commit(on_index_commit)

