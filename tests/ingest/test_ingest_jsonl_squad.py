"""JSON Lines (plain and BEIR corpus.jsonl) and SQuAD JSON loading."""

from __future__ import annotations

import json
from pathlib import Path

from ragtune.ingest import Skipped, load_documents
from ragtune.types import Document


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_fields_ids_and_metadata(tmp_path: Path):
    path = write_lines(
        tmp_path / "kb.jsonl",
        [
            json.dumps(
                {
                    "id": "faq-1",
                    "title": "Refunds",
                    "text": "Refunds take 5 days.",
                    "lang": "en",
                    "metadata": {"team": "billing", "lang": "fr"},
                }
            ),
            json.dumps({"text": "No id here.", "tags": ["x"]}),
            "",
            json.dumps({"id": 7, "text": "Numeric id."}),
        ],
    )
    docs = load_documents([path]).documents
    assert docs == [
        Document("faq-1", "Refunds take 5 days.", "Refunds", str(path), {"lang": "fr", "team": "billing"}),
        Document("kb.jsonl:2", "No id here.", "", str(path), {"tags": ["x"]}),
        Document("7", "Numeric id.", "", str(path), {}),
    ]


def test_jsonl_ids_without_id_use_relative_path_under_folder(tmp_path: Path):
    (tmp_path / "data").mkdir()
    write_lines(tmp_path / "data" / "notes.jsonl", [json.dumps({"text": "a"}), json.dumps({"text": "b"})])
    first = load_documents([tmp_path]).documents
    again = load_documents([tmp_path]).documents
    assert [d.doc_id for d in first] == ["data/notes.jsonl:1", "data/notes.jsonl:2"]
    assert first == again


def test_beir_corpus_lines(tmp_path: Path):
    path = write_lines(
        tmp_path / "corpus.jsonl",
        [
            json.dumps(
                {"_id": "4983", "title": "Microstructural development", "text": "Alterations of...", "metadata": {}}
            ),
            json.dumps({"_id": "5836", "title": "Induction", "text": "Myelodysplastic...", "metadata": {"year": 2001}}),
        ],
    )
    docs = load_documents([path]).documents
    assert [(d.doc_id, d.title, d.text, d.metadata) for d in docs] == [
        ("4983", "Microstructural development", "Alterations of...", {}),
        ("5836", "Induction", "Myelodysplastic...", {"year": 2001}),
    ]


def test_bad_jsonl_lines_reported_per_line_and_others_kept(tmp_path: Path):
    path = write_lines(
        tmp_path / "mixed.jsonl",
        [
            json.dumps({"id": "a", "text": "good one"}),
            '{"id": "b", "text": "unterminated',
            "[1, 2]",
            json.dumps({"id": "c", "body": "no text field"}),
            json.dumps({"id": "d", "text": "   "}),
            json.dumps({"id": "e", "text": 42}),
            json.dumps({"id": "a", "text": "duplicate id"}),
            json.dumps({"id": "f", "text": "good two"}),
        ],
    )
    result = load_documents([path])
    assert [d.doc_id for d in result.documents] == ["a", "f"]
    src = str(path)
    assert [s.path for s in result.skipped] == [f"{src}:{n}" for n in (2, 3, 4, 5, 6, 7)]
    why = [s.reason for s in result.skipped]
    assert why[0].startswith("malformed JSON (Unterminated string")
    assert why[1:] == [
        "not a JSON object (got list)",
        "no 'text' string field",
        "empty text",
        "'text' is not a string (got int)",
        "duplicate id 'a' (first on line 1)",
    ]


def test_jsonl_file_level_problems(tmp_path: Path):
    write_lines(tmp_path / "ok.jsonl", [json.dumps({"text": "fine"})])
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "binary.jsonl").write_bytes(b'{"text": "a"}\n\x00\x00')
    result = load_documents([tmp_path])
    assert [d.doc_id for d in result.documents] == ["ok.jsonl:1"]
    assert sorted((Path(s.path).name, s.reason) for s in result.skipped) == [
        ("binary.jsonl", "binary file"),
        ("empty.jsonl", "empty"),
    ]


def squad_payload() -> dict:
    qas = [{"id": "q1", "question": "Who won?", "answers": [{"text": "Denver Broncos", "answer_start": 0}]}]
    return {
        "version": "1.1",
        "data": [
            {
                "title": "Super_Bowl_50",
                "paragraphs": [
                    {"context": "Denver Broncos won.", "qas": qas},
                    {"context": "It was in Santa Clara.", "qas": []},
                ],
            },
            {"title": "Normans", "paragraphs": [{"context": "The Normans were in Normandy.", "qas": []}]},
        ],
    }


def test_squad_paragraphs_become_documents(tmp_path: Path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(squad_payload()))
    docs = load_documents([path]).documents
    assert docs == [
        Document("Super_Bowl_50#0", "Denver Broncos won.", "Super Bowl 50", str(path), {"article": "Super_Bowl_50"}),
        Document("Super_Bowl_50#1", "It was in Santa Clara.", "Super Bowl 50", str(path), {"article": "Super_Bowl_50"}),
        Document("Normans#0", "The Normans were in Normandy.", "Normans", str(path), {"article": "Normans"}),
    ]


def test_json_that_is_not_squad_is_skipped(tmp_path: Path):
    (tmp_path / "config.json").write_text(json.dumps({"name": "x"}))
    (tmp_path / "list.json").write_text("[1, 2, 3]")
    (tmp_path / "badshape.json").write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"text": "x"}]}]}))
    (tmp_path / "broken.json").write_text('{"data": [')
    (tmp_path / "good.json").write_text(json.dumps(squad_payload()))
    result = load_documents([tmp_path])
    assert len(result.documents) == 3
    why = {Path(s.path).name: s.reason for s in result.skipped}
    assert set(why) == {"config.json", "list.json", "badshape.json", "broken.json"}
    assert why["config.json"].startswith("not SQuAD format (expected")
    assert why["list.json"].startswith("not SQuAD format")
    assert why["badshape.json"].startswith("not SQuAD format (data[0].paragraphs[0]: paragraph has no 'context'")
    assert why["broken.json"].startswith("malformed JSON (")


def test_shared_squad_and_scifact_load(shared_data: Path):
    squad = load_documents([shared_data / "squad" / "squad-v1.1-dev-even.json"])
    assert squad.skipped == []
    assert len({d.metadata["article"] for d in squad.documents}) == 24
    assert squad.documents[0].doc_id == "Super_Bowl_50#0" and squad.documents[0].title == "Super Bowl 50"
    scifact = load_documents([shared_data / "scifact" / "corpus.jsonl"])
    assert scifact.skipped == [] and len(scifact.documents) == 5183
    assert scifact.documents[0].doc_id == "4983"
    assert isinstance(scifact.skipped, list) and not any(isinstance(d, Skipped) for d in scifact.documents)


def test_one_bad_squad_paragraph_is_reported_and_the_rest_kept(tmp_path: Path):
    payload = squad_payload()
    payload["data"][0]["paragraphs"].insert(1, {"context": 42, "qas": []})
    payload["data"].insert(1, "not an article")
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(payload))
    result = load_documents([path])
    assert [d.doc_id for d in result.documents] == ["Super_Bowl_50#0", "Super_Bowl_50#2", "Normans#0"]
    assert result.skipped == [
        Skipped(f"{path}:data[0].paragraphs[1]", "paragraph has no 'context' string (got int)"),
        Skipped(f"{path}:data[1]", "article is not a JSON object (got str)"),
    ]
