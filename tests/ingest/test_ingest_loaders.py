"""Loaders for text, Markdown, HTML and PDF files; folder walking; every bad-input case reported, not raised."""

from __future__ import annotations

import codecs
import io
import os
from pathlib import Path

import pytest

from ragtune.errors import InputError
from ragtune.ingest import Skipped, iter_documents, load_documents
from ragtune.types import Document


def make_pdf(path: Path, pages: list[list[str]], title: str | None = None) -> Path:
    """A real PDF with a text layer, written with reportlab (one list of lines per page)."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path))
    if title:
        pdf.setTitle(title)
    for lines in pages:
        y = 800
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 16
        pdf.showPage()
    pdf.save()
    return path


def by_id(result) -> dict[str, Document]:
    return {d.doc_id: d for d in result.documents}


def reasons(result) -> dict[str, str]:
    return {Path(s.path).name: s.reason for s in result.skipped}


def test_markdown_title_and_text(tmp_path: Path):
    path = tmp_path / "leave_policy.md"
    path.write_text("Intro line.\n\n# Leave Policy\n\nStaff get 25 days.\n\n## Carry over\n\nUp to 5 days.\n")
    doc = load_documents([path]).documents[0]
    assert doc.doc_id == "leave_policy.md"
    assert doc.title == "Leave Policy"
    assert doc.source == str(path)
    assert "Staff get 25 days." in doc.text and "## Carry over" in doc.text


def test_markdown_without_heading_uses_humanised_stem(tmp_path: Path):
    path = tmp_path / "remote-work_rules.markdown"
    path.write_text("Work from anywhere.\n")
    assert load_documents([path]).documents[0].title == "Remote work rules"


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Travel Policy\n\nBook trains, not planes.\n", "Travel Policy"),
        ("Book trains, not planes.\nAlways.\n", "Expenses"),  # first line not followed by a blank line
        ("x" * 120 + "\n\nbody\n", "Expenses"),  # first line too long to be a title
    ],
)
def test_text_title(tmp_path: Path, text: str, title: str):
    path = tmp_path / "expenses.txt"
    path.write_text(text)
    doc = load_documents([path]).documents[0]
    assert doc.title == title
    assert doc.text == text


def test_html_drops_chrome_and_keeps_structure(tmp_path: Path):
    html = """<html><head><title>Benefits | ACME</title><style>p {color: red}</style></head>
    <body><nav>Home | About</nav><h1>Benefits</h1><p>Health   insurance
    is covered.</p><script>var x = "secret";</script><h2>Pension</h2><p>We match 5%.</p>
    <ul><li>first item</li><li>second item</li></ul><footer>(c) ACME</footer></body></html>"""
    path = tmp_path / "benefits.html"
    path.write_text(html)
    doc = load_documents([path]).documents[0]
    assert doc.title == "Benefits | ACME"
    assert doc.text == (
        "# Benefits\n\nHealth insurance is covered.\n\n## Pension\n\nWe match 5%.\n\nfirst item\n\nsecond item"
    )
    for hidden in ("Home | About", "secret", "color", "(c) ACME"):
        assert hidden not in doc.text


def test_html_table_rows_become_lines(tmp_path: Path):
    path = tmp_path / "escorts.html"
    path.write_text(
        "<h2>Escort rules</h2><table><tr><th>Area</th><th>Escort needed?</th></tr>"
        "<tr><td>Laboratories</td><td>Yes, <b>always</b></td></tr></table>"
    )
    doc = load_documents([path]).documents[0]
    assert doc.text == "## Escort rules\n\nArea | Escort needed?\n\nLaboratories | Yes, always"
    assert doc.title == "Escorts"  # no <title>, no <h1>


def test_html_title_from_first_h1(tmp_path: Path):
    path = tmp_path / "page.htm"
    path.write_text("<body><h1>Holiday  Calendar</h1><p>Closed on 25 December.<br>Open on 26th.</p></body>")
    doc = load_documents([path]).documents[0]
    assert doc.title == "Holiday Calendar"
    assert doc.text == "# Holiday Calendar\n\nClosed on 25 December.\nOpen on 26th."


def test_html_without_text_is_skipped(tmp_path: Path):
    path = tmp_path / "blank.html"
    path.write_text("<html><head><title>T</title></head><body><script>x()</script></body></html>")
    result = load_documents([path])
    assert result.documents == []
    assert result.skipped == [Skipped(str(path), "empty (no visible text)")]


def test_pdf_pages_and_metadata_title(tmp_path: Path):
    path = make_pdf(
        tmp_path / "handbook.pdf", [["Employee Handbook", "Welcome aboard."], ["Page two text."]], title="The Handbook"
    )
    doc = load_documents([path]).documents[0]
    assert doc.doc_id == "handbook.pdf"
    assert doc.title == "The Handbook"
    assert doc.metadata == {"pages": 2}
    assert doc.text == "Employee Handbook\n\nWelcome aboard.\n\nPage two text."


def test_pdf_lines_regrouped_into_paragraphs():
    from ragtune.ingest.pdf import pdf_paragraphs

    page = (
        "Weather limits\nSmall-boat work stops when the wind reaches force 6 and the infor-\nmation is "
        "posted.\nForecasts are checked daily.\n\nCrew\nTwo people, always.\nA closing line"
    )
    assert pdf_paragraphs(page) == (
        "Weather limits\n\nSmall-boat work stops when the wind reaches force 6 and the infor-mation is posted. "
        "Forecasts are checked daily.\n\nCrew\n\nTwo people, always. A closing line"
    )


def test_pdf_title_falls_back_to_first_line(tmp_path: Path):
    path = make_pdf(tmp_path / "memo.pdf", [["", "Quarterly Memo", "Numbers are up."]])
    assert load_documents([path]).documents[0].title == "Quarterly Memo"


def test_bad_pdfs_are_skipped_with_reasons(tmp_path: Path):
    from pypdf import PdfReader, PdfWriter

    good = make_pdf(tmp_path / "good.pdf", [["Readable text."]])
    writer = PdfWriter()
    for page in PdfReader(good).pages:
        writer.add_page(page)
    writer.encrypt("s3cret")
    buffer = io.BytesIO()
    writer.write(buffer)
    (tmp_path / "locked.pdf").write_bytes(buffer.getvalue())
    (tmp_path / "truncated.pdf").write_bytes(good.read_bytes()[:300])
    (tmp_path / "fake.pdf").write_bytes(b"hello, I am not a PDF")
    make_pdf(tmp_path / "scanned.pdf", [[]])

    result = load_documents([tmp_path])
    assert [d.doc_id for d in result.documents] == ["good.pdf"]
    why = reasons(result)
    assert why["locked.pdf"].startswith("encrypted PDF")
    assert why["truncated.pdf"].startswith("corrupt PDF")
    assert why["fake.pdf"] == "corrupt PDF (no %PDF- header)"
    assert why["scanned.pdf"] == "no text layer (scanned PDF?)"


def test_folder_walk_ids_are_relative_posix_paths_and_stable(tmp_path: Path):
    (tmp_path / "policies" / "hr").mkdir(parents=True)
    (tmp_path / "policies" / "leave.md").write_text("# Leave\n\n25 days.\n")
    (tmp_path / "policies" / "hr" / "pay.txt").write_text("Paid monthly.\n")
    (tmp_path / "faq.md").write_text("# FAQ\n\nAsk HR.\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config.txt").write_text("hidden folder, ignored")
    (tmp_path / ".notes.md").write_text("hidden file, ignored")

    first = load_documents([tmp_path])
    second = load_documents([str(tmp_path)])
    assert [d.doc_id for d in first.documents] == ["faq.md", "policies/hr/pay.txt", "policies/leave.md"]
    assert first == second
    assert first.skipped == []
    assert by_id(first)["policies/leave.md"].source == str(tmp_path / "policies" / "leave.md")
    # the same file given directly is named by its file name
    assert [d.doc_id for d in load_documents([tmp_path / "policies" / "leave.md"]).documents] == ["leave.md"]


def test_missing_path_raises_input_error(tmp_path: Path):
    with pytest.raises(InputError, match=r"nope\.md"):
        load_documents([tmp_path / "nope.md"])


def test_bad_files_reported_while_good_ones_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "good.txt").write_text("Fine text.\n")
    (tmp_path / "bom8.txt").write_bytes(codecs.BOM_UTF8 + "Caf\u00e9 with BOM.\n".encode())
    (tmp_path / "bom16.md").write_bytes("# T\u00eete\n\nUTF-16 text.\n".encode("utf-16"))
    (tmp_path / "binary.txt").write_bytes(b"abc\x00\x01\x02def")
    (tmp_path / "latin1.txt").write_bytes("ok so far caf\u00e9".encode("latin-1"))
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "blank.txt").write_text("  \n\t\n ")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "Makefile").write_text("all:")
    (tmp_path / "locked.txt").write_text("secret")
    (tmp_path / "dangling.md").symlink_to(tmp_path / "gone.md")
    os.mkfifo(tmp_path / "pipe.txt")  # reading it would block forever

    real_read_bytes = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # running as root, chmod 000 would not stop us reading
        if self.name == "locked.txt":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = load_documents([tmp_path])

    docs = by_id(result)
    assert sorted(docs) == ["bom16.md", "bom8.txt", "good.txt"]
    assert docs["bom8.txt"].text == "Caf\u00e9 with BOM.\n"
    assert docs["bom16.md"].title == "T\u00eete" and docs["bom16.md"].text.endswith("UTF-16 text.\n")
    why = reasons(result)
    assert why == {
        "binary.txt": "binary file",
        "latin1.txt": "not valid UTF-8 (byte 0xe9 at offset 13)",
        "empty.md": "empty",
        "blank.txt": "empty",
        "image.png": why["image.png"],
        "Makefile": why["Makefile"],
        "locked.txt": "unreadable (permission denied)",
        "dangling.md": f"broken link to {tmp_path / 'gone.md'}",  # issue #12 item 10: links are named
        "pipe.txt": "not a regular file",
    }
    assert why["image.png"].startswith("unsupported file type '.png'")
    assert why["Makefile"].startswith("unsupported file type (no extension)")


def test_unsupported_file_given_explicitly_is_reported(tmp_path: Path):
    path = tmp_path / "slides.pptx"
    path.write_bytes(b"PK\x03\x04")
    result = load_documents([path])
    assert result.documents == [] and len(result.skipped) == 1
    assert result.skipped[0].path == str(path) and "'.pptx'" in result.skipped[0].reason


def test_duplicate_ids_across_arguments_are_reported(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "notes.txt").write_text("first")
    (tmp_path / "b" / "notes.txt").write_text("second")
    result = load_documents([tmp_path / "a", tmp_path / "b"])
    assert [d.text for d in result.documents] == ["first"]
    assert result.skipped == [
        Skipped(
            str(tmp_path / "b" / "notes.txt"),
            f"duplicate document id 'notes.txt' (first from {tmp_path / 'a' / 'notes.txt'})",
        )
    ]


def test_iter_documents_streams_documents_and_skips_in_order(tmp_path: Path):
    (tmp_path / "a.txt").write_text("alpha")
    (tmp_path / "b.bin").write_bytes(b"\x00")
    (tmp_path / "c.txt").write_text("gamma")
    items = list(iter_documents([tmp_path]))
    assert [type(i).__name__ for i in items] == ["Document", "Skipped", "Document"]
    assert [i.doc_id for i in items if isinstance(i, Document)] == ["a.txt", "c.txt"]


def test_symbolic_links_are_reported_and_not_followed_out_of_the_roots(tmp_path: Path):
    tmp_path = tmp_path.resolve()  # reasons name resolved link targets
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "secret.txt").write_text("Secret text that must not leak.\n")
    (outside / "sub" / "more.txt").write_text("More secret text.\n")
    root = tmp_path / "docs"
    (root / "real").mkdir(parents=True)
    (root / "real" / "a.txt").write_text("Alpha text.\n")
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "inner.txt").symlink_to(root / "real" / "a.txt")
    (root / "linked-out").symlink_to(outside / "sub", target_is_directory=True)
    (root / "linked-in").symlink_to(root / "real", target_is_directory=True)
    (root / "broken.txt").symlink_to(tmp_path / "gone.txt")
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)

    result = load_documents([root])
    assert sorted(d.doc_id for d in result.documents) == ["inner.txt", "real/a.txt"]
    why = {Path(s.path).relative_to(root).as_posix(): s.reason for s in result.skipped}
    assert set(why) == {"leak.txt", "linked-out", "linked-in", "broken.txt", "real/loop"}
    assert why["leak.txt"] == f"link to {outside / 'secret.txt'}, outside the given paths; not followed (--follow-links follows links)"
    assert why["linked-out"].startswith(f"link to folder {outside / 'sub'} outside the given paths; not followed")
    assert why["linked-in"].startswith(f"link to folder {root / 'real'} inside the given paths")
    assert why["broken.txt"] == f"broken link to {tmp_path / 'gone.txt'}"
    assert all("Secret" not in d.text for d in result.documents)

    followed = load_documents([root], follow_links=True)
    assert sorted(d.doc_id for d in followed.documents) == [
        "inner.txt", "leak.txt", "linked-in/a.txt", "linked-out/more.txt", "real/a.txt",
    ]
    why = {Path(s.path).relative_to(root).as_posix(): s.reason for s in followed.skipped}
    assert set(why) == {"broken.txt", "real/loop", "linked-in/loop"}
    assert why["real/loop"].endswith("already walked (a link loop?); not followed again")


def test_cli_follow_links_flag(tmp_path: Path):
    from typer.testing import CliRunner

    from ragtune.cli import build_app

    tmp_path = tmp_path.resolve()
    (tmp_path / "outside.txt").write_text("Outside text.\n")
    root = tmp_path / "docs"
    root.mkdir()
    (root / "a.txt").write_text("Alpha text.\n")
    (root / "out.txt").symlink_to(tmp_path / "outside.txt")
    runner, app = CliRunner(), build_app()
    plain = runner.invoke(app, ["-q", "ingest", str(root), "--index", str(tmp_path / "ix"), "--embedder", "hash"])
    assert plain.exit_code == 1 and "1 added" in plain.output
    assert f"skipped {root / 'out.txt'}: link to {tmp_path / 'outside.txt'}, outside the given paths" in plain.output
    followed = runner.invoke(app, ["-q", "ingest", str(root), "--index", str(tmp_path / "ix"), "--follow-links"])
    assert followed.exit_code == 0 and "1 added, 0 replaced, 1 unchanged" in followed.output
