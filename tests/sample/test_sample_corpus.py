"""The shipped sample corpus is complete and self-consistent: every answer and evidence sentence is found in
its gold document's extracted text (pypdf for PDF, BeautifulSoup for HTML), ids are unique, the freshness set
replaces real documents, and the multi-hop and injection sets point at files that exist. Fast; no models."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "ragtune" / "sample"
HANDBOOK = SAMPLE / "handbook"
UPDATES = SAMPLE / "updates" / "handbook"
INJECTION = SAMPLE / "injection"
DOC_SUFFIXES = {".md", ".txt", ".html", ".pdf"}


def extract_text(path: Path) -> str:
    """The text a reader sees: file text for .md/.txt, visible text for .html, pypdf's text for .pdf."""
    if path.suffix == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() for page in PdfReader(path).pages)
    if path.suffix == ".html":
        from bs4 import BeautifulSoup

        soup = BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")
        for tag in soup(["script", "style", "head"]):
            tag.decompose()
        return soup.get_text("\n")
    return path.read_text(encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def doc_files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.suffix in DOC_SUFFIXES}


@pytest.fixture(scope="module")
def handbook_texts() -> dict[str, str]:
    return {rel: extract_text(path) for rel, path in doc_files(HANDBOOK).items()}


@pytest.fixture(scope="module")
def update_texts() -> dict[str, str]:
    return {rel: extract_text(path) for rel, path in doc_files(UPDATES).items()}


@pytest.fixture(scope="module")
def questions() -> list[dict]:
    return read_jsonl(SAMPLE / "questions.jsonl")


def test_handbook_has_30_documents_in_the_promised_formats(handbook_texts):
    formats = Counter(Path(rel).suffix for rel in handbook_texts)
    assert formats == {".md": 14, ".txt": 8, ".html": 5, ".pdf": 3}
    assert {rel.split("/")[0] for rel in handbook_texts} == {"policies", "teams", "facilities", "projects", "history"}


def test_every_document_is_short_and_readable(handbook_texts):
    for rel, text in handbook_texts.items():
        words = len(text.split())
        assert 120 <= words <= 400, (rel, words)


def test_html_pages_are_real_pages():
    from bs4 import BeautifulSoup

    pages = sorted(HANDBOOK.rglob("*.html"))
    assert len(pages) == 5
    for page in pages:
        soup = BeautifulSoup(page.read_text(encoding="utf-8"), "html.parser")
        assert soup.title is not None and soup.title.get_text(strip=True), page
        assert soup.find("h1") is not None and soup.find("p") is not None, page
        assert soup.find("ul") is not None or soup.find("table") is not None, page


def test_markdown_documents_have_headings():
    for path in HANDBOOK.rglob("*.md"):
        assert path.read_text(encoding="utf-8").startswith("# "), path


def test_pdfs_match_their_generator(tmp_path):
    pytest.importorskip("reportlab")
    from ragtune.sample.make_pdfs import PDF_DOCUMENTS, make_pdfs

    make_pdfs(tmp_path)
    for rel in PDF_DOCUMENTS:
        assert extract_text(tmp_path / rel) == extract_text(HANDBOOK / rel), rel


def test_questions_schema_counts_and_ids(questions):
    assert len(questions) == 90
    assert len({q["id"] for q in questions}) == 90
    assert all(re.fullmatch(r"q\d{3}", q["id"]) for q in questions)
    splits = Counter(q["split"] for q in questions)
    assert splits == {"train": 60, "test": 30}
    assert len({q["question"].lower() for q in questions}) == 90
    for q in questions:
        assert q["answers"][0] == q["answer"], q["id"]
        assert len(q["answer"].split()) <= 5, q["id"]
        if q["split"] == "train":
            assert len(q["paraphrases"]) == 2, q["id"]
            assert q["question"] not in q["paraphrases"], q["id"]
        else:
            assert q["paraphrases"] == [], q["id"]


def test_every_document_has_two_train_and_one_test_question(questions, handbook_texts):
    per_doc = Counter((q["doc_id"], q["split"]) for q in questions)
    for rel in handbook_texts:
        assert per_doc[(rel, "train")] == 2 and per_doc[(rel, "test")] == 1, rel


def _assert_grounded(row: dict, text: str) -> None:
    assert row["evidence"] in text, (row["id"], row["evidence"])
    assert row["answer"].lower() in text.lower(), (row["id"], row["answer"])
    assert row["answer"].lower() in row["evidence"].lower(), (row["id"], "answer not in evidence")


def test_answers_and_evidence_are_in_the_gold_document(questions, handbook_texts):
    for q in questions:
        assert q["doc_id"] in handbook_texts, q["id"]
        _assert_grounded(q, handbook_texts[q["doc_id"]])


def test_test_questions_do_not_copy_train_questions(questions):
    train = {q["question"].lower() for q in questions if q["split"] == "train"}
    train |= {p.lower() for q in questions if q["split"] == "train" for p in q["paraphrases"]}
    assert not [q["id"] for q in questions if q["split"] == "test" and q["question"].lower() in train]


def test_updates_replace_existing_documents(update_texts, handbook_texts):
    assert len(update_texts) == 6
    for rel, new_text in update_texts.items():
        assert rel in handbook_texts, rel
        assert new_text != handbook_texts[rel], rel


def test_update_questions_ask_about_new_facts(update_texts, handbook_texts, questions):
    rows = read_jsonl(SAMPLE / "updates" / "questions.jsonl")
    assert len(rows) == 12 and len({r["id"] for r in rows}) == 12
    assert {r["doc_id"] for r in rows} == set(update_texts)
    by_id = {q["id"]: q for q in questions}
    old_facts_asked_in_train = 0
    for row in rows:
        _assert_grounded(row, update_texts[row["doc_id"]])
        assert row["old_answer"].lower() in handbook_texts[row["doc_id"]].lower(), row["id"]
        # The new sentence is not in the original document, and the old one is gone from the new document.
        assert row["evidence"] not in handbook_texts[row["doc_id"]], row["id"]
        old = by_id[row["supersedes"]]
        assert old["doc_id"] == row["doc_id"] and old["answer"] == row["old_answer"], row["id"]
        assert old["evidence"] not in update_texts[row["doc_id"]], row["id"]
        old_facts_asked_in_train += old["split"] == "train"
    assert old_facts_asked_in_train >= 8


def test_unchanged_questions_still_hold_after_the_update(update_texts, questions):
    superseded = {r["supersedes"] for r in read_jsonl(SAMPLE / "updates" / "questions.jsonl")}
    for q in questions:
        if q["doc_id"] in update_texts and q["id"] not in superseded:
            _assert_grounded(q, update_texts[q["doc_id"]])


def test_multihop_questions_need_two_existing_documents(handbook_texts):
    rows = read_jsonl(SAMPLE / "multihop.jsonl")
    assert len(rows) == 20 and len({r["id"] for r in rows}) == 20
    for row in rows:
        assert len(row["doc_ids"]) == 2 and row["doc_ids"][0] != row["doc_ids"][1], row["id"]
        assert len(row["evidence"]) == 2, row["id"]
        for doc_id, evidence in zip(row["doc_ids"], row["evidence"]):
            assert doc_id in handbook_texts, (row["id"], doc_id)
            assert evidence in handbook_texts[doc_id], (row["id"], evidence)
        assert row["answers"][0] == row["answer"]
        assert any(row["answer"].lower() in e.lower() for e in row["evidence"]), row["id"]


def test_injection_set_is_labelled_and_balanced():
    labels = read_jsonl(INJECTION / "labels.jsonl")
    files = {p.name for p in INJECTION.glob("*.md")}
    assert {row["doc_id"] for row in labels} == files
    assert Counter(row["injected"] for row in labels) == {True: 8, False: 8}
    assert len({row["pattern"] for row in labels if row["injected"]}) == 8
    for row in labels:
        text = (INJECTION / row["doc_id"]).read_text(encoding="utf-8")
        if row["injected"]:
            assert row["trigger"] and row["trigger"] in text, row["doc_id"]
        else:
            assert row["trigger"] == "", row["doc_id"]


def test_ingest_loads_every_file_without_skipping(questions):
    ingest = pytest.importorskip("ragtune.ingest")
    if not hasattr(ingest, "load_documents"):
        pytest.skip("ragtune.ingest.load_documents not available yet")
    for root in (HANDBOOK, UPDATES):
        result = ingest.load_documents([root])
        assert result.skipped == [], result.skipped
        assert {d.doc_id for d in result.documents} == set(doc_files(root))
    # Single files are named by their file name, which is what labels.jsonl uses (it sits beside them).
    injection_files = sorted(INJECTION.glob("*.md"))
    result = ingest.load_documents(injection_files)
    assert result.skipped == [] and {d.doc_id for d in result.documents} == {p.name for p in injection_files}
    # Evidence survives ingestion too (whitespace may be normalised by the loaders).
    texts = {d.doc_id: " ".join(d.text.split()) for d in ingest.load_documents([HANDBOOK]).documents}
    for q in questions:
        assert " ".join(q["evidence"].split()) in texts[q["doc_id"]], (q["id"], q["evidence"])
