"""Rule-based entity extraction and alias merging on hand-made text."""

from __future__ import annotations

from ragtune.graph.extract import (
    alias_map,
    extract_chunk_mentions,
    extract_document,
    initials,
    normalize_name,
)
from ragtune.text import split_clauses


def keys(text: str) -> list[str]:
    return [m.key for m in extract_chunk_mentions([text])[0]]


def test_normalize_name_strips_case_possessive_article_and_titles() -> None:
    assert normalize_name("The Kelp Ecology Team's") == "kelp ecology team"
    assert normalize_name("Dr Maren Okonkwo-Lisle") == "maren okonkwo-lisle"
    assert normalize_name("Project SILTLINE") == "siltline"
    assert normalize_name("Harbours’") == "harbours"
    assert normalize_name("The") == "the"  # a lone article is left alone (and then dropped as a stop word)


def test_capitalised_names_codes_acronyms_and_quotes() -> None:
    text = 'Lantern Point Field Station is operated by the Kelp Ecology Team. Form HB-7 goes to the MICS office. We call it "the blue room".'
    found = keys(text)
    assert found == ["lantern point field station", "kelp ecology team", "form hb-7", "mics", "blue room"]
    assert keys("It needs HB-7 and R2 but not 2024 or A.") == ["hb-7", "r2"]


def test_sentence_initial_words_and_dates_are_not_entities() -> None:
    assert keys("Booking requests go to the coordinator. Every summer the team dives.") == []
    assert keys("It opened in June 2011 on a Monday.") == []
    # a multi-word name at the start of a sentence is kept, the article in front of it is dropped
    assert keys("The Brinewell Laboratory opened in 1987.") == ["brinewell laboratory"]


def test_connectors_join_names_but_do_not_dangle() -> None:
    assert keys("She chairs the Board of Trustees.") == ["board of trustees"]
    assert keys("Funding from Saltmere and Quennock arrived.") == ["saltmere", "quennock"]


def test_mentions_carry_their_sentence_index() -> None:
    mentions = extract_chunk_mentions(["Alpha Station is big. It is run by Beta Group! Nothing here."])[0]
    assert [(m.key, m.sentence) for m in mentions] == [("alpha station", 0), ("beta group", 1)]
    assert split_clauses("One. Two!\nThree") == ["One.", "Two!", "Three"]


def test_document_aliases_merge_surnames_into_full_names() -> None:
    chunks = ["The team is led by Rafferty Dunmore, a diver.", "Ask Dunmore about the plots. Ask Rafferty too."]
    merged = extract_document(chunks)
    assert [m.key for m in merged[1]] == ["rafferty dunmore", "rafferty dunmore"]
    assert merged[1][0].surface == "Dunmore"  # the surface form is kept for display


def test_common_words_opening_a_sentence_are_not_part_of_names() -> None:
    merged = extract_document(["Please review the notes with Anna Hale.", "Review Board members meet.", "Ask Hale."])
    assert [m.key for m in merged[1]] == ["board"]  # "review" is used in lower case elsewhere in the document
    assert [m.key for m in merged[2]] == ["anna hale"]
    # ...but a name seen elsewhere in the document keeps its first word even though it is a common noun
    merged = extract_document(["Kelp Ecology Team. The team studies kelp forests.", "It is the Kelp Ecology Team."])
    assert [m.key for m in merged[0]] == ["kelp ecology team"]
    assert keys("In May on Skelly Holm the terns nest.") == ["skelly holm"]
    merged = extract_document(["Landing on Skelly Holm is rare.", "No landing is allowed."])
    assert [m.key for m in merged[0]] == ["skelly holm"]


def test_ambiguous_surname_is_not_merged() -> None:
    merged = extract_document(["Anna Hale and Tom Hale met.", "Later Hale left."])
    assert [m.key for m in merged[1]] == ["hale"]


def test_acronyms_map_onto_names_with_matching_initials() -> None:
    assert initials("marrowgate institute for coastal science") == "mics"
    aliases = alias_map(["marrowgate institute for coastal science", "mics", "hbn", "hollow buoy network", "zz"])
    assert aliases == {"mics": "marrowgate institute for coastal science", "hbn": "hollow buoy network"}


def test_text_without_entities_and_non_latin_text_give_nothing() -> None:
    assert extract_chunk_mentions(["", "just lower case words here.", "这是一个没有大写字母的句子。"]) == [[], [], []]
    # accented capitals are names too
    assert keys("Elle travaille à l'Université de Genève depuis 2020.") == ["université de genève"]
