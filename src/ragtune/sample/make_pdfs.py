"""Regenerate the three PDF documents of the sample handbook with reportlab.

Run from the repository root (reportlab is a dev dependency):

    .venv/bin/python -m ragtune.sample.make_pdfs

The text lives here, not in the PDFs, so it can be reviewed in diffs. Each sentence is drawn on its own line
(never wrapped) so that pypdf extracts every sentence intact: the corpus tests look up question evidence as an
exact substring of the extracted text. `invariant=True` makes the output byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

HANDBOOK_DIR = Path(__file__).resolve().parent / "handbook"

# Each document: (title, author, [(heading, [sentence, ...]), ...]). A heading of "" starts a paragraph break only.
Section = tuple[str, list[str]]

PDF_DOCUMENTS: dict[str, tuple[str, list[Section]]] = {
    "policies/sea-safety.pdf": (
        "Sea Safety Rules",
        [
            ("", [
                "These rules apply to everyone who works on the water for the Marrowgate Institute for Coastal Science.",
                "They cover the RV Pelling Gull, the four small boats and any hired boat used for institute work.",
            ]),
            ("Weather limits", [
                "Small-boat work stops when the wind reaches force 6 or above.",
                "The coxswain may stop work earlier if the sea state looks unsafe.",
                "Forecasts are checked with the Harbour Desk before every launch.",
            ]),
            ("Crew", [
                "A small boat must always carry at least two people.",
                "Lone working on the water is never allowed, even inside Saltmere Harbour.",
                "Every small-boat driver must hold the institute's small-boat licence, code SB-2.",
                "The SB-2 licence is renewed every three years with a practical test.",
            ]),
            ("Equipment", [
                "Everyone on deck wears a lifejacket, whatever the weather.",
                "Lifejackets are inspected every 6 months by the Vessel Operations team.",
                "Each small boat carries a handheld radio, flares and a first aid kit.",
            ]),
            ("Float plans", [
                "Before launching, the coxswain files a float plan with the Harbour Desk.",
                "The plan lists the crew, the route and the expected time of return.",
                "If a boat is 30 minutes overdue, the Harbour Desk starts the emergency procedure.",
            ]),
            ("Who to ask", [
                "The institute's sea safety officer is Dagny Ferrow.",
                "Questions about these rules can also be raised at the monthly fleet meeting.",
            ]),
        ],
    ),
    "facilities/rv-pelling-gull.pdf": (
        "RV Pelling Gull - Vessel Fact Sheet",
        [
            ("", [
                "The RV Pelling Gull is the institute's research vessel and the largest ship in its fleet.",
                "She was built at the Creel family boatyard in Saltmere and launched in 1986.",
            ]),
            ("Dimensions and performance", [
                "The RV Pelling Gull is 31 metres long.",
                "Her top speed is 11 knots, and she cruises at 9 knots.",
                "With full tanks and stores she can stay at sea for up to 18 days.",
            ]),
            ("People on board", [
                "The vessel has 12 berths for scientists, in six twin cabins.",
                "Her master is Captain Jory Meckle, who has sailed with the institute since 2003.",
                "A crew of seven runs the ship on longer cruises.",
            ]),
            ("Equipment", [
                "An A-frame on the stern lifts corers and moorings of up to 4 tonnes.",
                "A wet laboratory and a dry laboratory sit on the main deck.",
                "A multibeam echo sounder maps the sea floor beneath the ship.",
            ]),
            ("History", [
                "The vessel was given a major refit at the Dunholt shipyard in 2015.",
                "The refit added a new engine and the dry laboratory.",
            ]),
            ("Home port", [
                "Her home berth is Dock 3 at Saltmere Harbour.",
                "Ship time is requested through the institute's fleet booking system.",
            ]),
        ],
    ),
    "history/annual-report-2024.pdf": (
        "Annual Report 2024 - Summary",
        [
            ("", [
                "This summary presents the main figures from the institute's annual report for 2024.",
                "The full report, with accounts, is available from the executive office.",
            ]),
            ("People", [
                "At the end of 2024 the institute employed 214 staff.",
                "The institute also hosted 38 doctoral students, 9 of whom completed their degrees during the year.",
                "The Board of Trustees is chaired by Cressida Vane-Hollis.",
            ]),
            ("Money", [
                "The institute's total budget for 2024 was 19.6 million crowns.",
                "Research grants provided just over half of the income.",
                "The rest came from the Quennock Island Council, contracts and donations.",
            ]),
            ("Research", [
                "Staff published 61 peer-reviewed papers during the year.",
                "The RV Pelling Gull spent 163 days at sea in 2024.",
                "Two new buoys were added to replace ageing units in Ombra Sound.",
            ]),
            ("The island", [
                "Tideturn Day drew 3,870 visitors, the largest crowd in its history.",
                "Volunteers gave more than 2,000 hours to institute projects.",
            ]),
        ],
    ),
}

PAGE_MARGIN = 56.0  # points
BODY_FONT, BODY_SIZE, LEADING = "Helvetica", 10.5, 15.0
HEADING_FONT, HEADING_SIZE = "Helvetica-Bold", 13.0
TITLE_SIZE = 18.0


def write_pdf(path: Path, title: str, sections: list[Section]) -> None:
    """Write one fact-sheet style PDF: title, headings, and one sentence per line."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen.canvas import Canvas

    width, height = A4
    usable = width - 2 * PAGE_MARGIN
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    canvas = Canvas(str(tmp), pagesize=A4, invariant=True)
    canvas.setTitle(title)
    canvas.setAuthor("Marrowgate Institute for Coastal Science")
    y = height - PAGE_MARGIN

    def need(space: float) -> None:
        nonlocal y
        if y - space < PAGE_MARGIN:
            canvas.showPage()
            y = height - PAGE_MARGIN

    canvas.setFont(HEADING_FONT, TITLE_SIZE)
    canvas.drawString(PAGE_MARGIN, y - TITLE_SIZE, title)
    y -= TITLE_SIZE + LEADING
    for heading, sentences in sections:
        if heading:
            need(HEADING_SIZE + 2 * LEADING)
            y -= 0.6 * LEADING
            canvas.setFont(HEADING_FONT, HEADING_SIZE)
            canvas.drawString(PAGE_MARGIN, y - HEADING_SIZE, heading)
            y -= HEADING_SIZE + 0.5 * LEADING
        for sentence in sentences:
            # Wrapping would put a line break inside a sentence; refuse instead of silently breaking evidence.
            if stringWidth(sentence, BODY_FONT, BODY_SIZE) > usable:
                raise ValueError(f"sentence too wide for one line in {path.name}: {sentence!r}")
            need(LEADING)
            canvas.setFont(BODY_FONT, BODY_SIZE)
            canvas.drawString(PAGE_MARGIN, y - BODY_SIZE, sentence)
            y -= LEADING
    canvas.showPage()
    canvas.save()
    tmp.replace(path)


def make_pdfs(handbook_dir: Path = HANDBOOK_DIR) -> list[Path]:
    """Write every PDF of PDF_DOCUMENTS under `handbook_dir`; returns the paths written."""
    written = []
    for rel, (title, sections) in PDF_DOCUMENTS.items():
        out = handbook_dir / rel
        write_pdf(out, title, sections)
        logger.info("wrote %s", out)
        written.append(out)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HANDBOOK_DIR, help="handbook folder to write into")
    args = parser.parse_args()
    for path in make_pdfs(args.out):
        print(path)  # a script entry point, not library code


if __name__ == "__main__":
    main()
