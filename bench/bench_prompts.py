"""Prompt wording vs answer quality of the bundled LLM on SQuAD questions with their gold paragraph.

    .venv/bin/python bench/bench_prompts.py [--questions 30] [--max-new-tokens 32] [--variants current,short,...]

Each variant is a (system prompt, user-message layout) pair; every variant answers the same questions with
the gold paragraph as source [1]. Scores: SQuAD token F1 and exact match (ragtune.evaluate.answer_metrics) of
the parsed answer, mean answer length in words, and the share of answers citing [1]. The baseline is the
variant listed first. The winner is what ragtune.generate.prompts uses.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SQUAD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "squad" / "squad-v1.1-dev-even.json"

ONE_SHOT_USER = (
    "Sources:\n[1] Eiffel Tower: The Eiffel Tower is a wrought-iron tower in Paris. It was designed by the company "
    "of Gustave Eiffel and finished in 1889 for the World's Fair.\n\nQuestion: When was the Eiffel Tower finished?"
)
ONE_SHOT_ANSWER = "1889 [1]"
# Three worked examples with different answer types (a person, a place, a phrase), so the model copies the
# short form rather than one kind of answer (one year-valued example made it answer years to everything).
FEW_SHOT = [
    ("[1] Eiffel Tower: The Eiffel Tower is a wrought-iron tower in Paris. It was designed by the company of "
     "Gustave Eiffel and finished in 1889 for the World's Fair.", "Whose company designed the Eiffel Tower?",
     "Gustave Eiffel [1]"),
    ("[1] Danube: The Danube is the second-longest river in Europe. It rises in the Black Forest in Germany and "
     "flows into the Black Sea.", "Where does the Danube flow into?", "the Black Sea [1]"),
    ("[1] Photosynthesis: Plants use photosynthesis to turn light, water and carbon dioxide into sugar, "
     "releasing oxygen as a by-product.", "What do plants release during photosynthesis?", "oxygen [1]"),
]


def _sources(title: str, context: str) -> str:
    return f"[1] {title}: {context.strip()}"


def variant_messages(name: str, question: str, title: str, context: str) -> list[dict[str, str]]:
    from ragtune.generate.prompts import SYSTEM_RAG, build_messages
    from ragtune.types import Chunk, Hit

    src = _sources(title, context)
    if name == "current":
        return build_messages(question, [Hit(Chunk("g#0", "g", context, title=title), 1.0)])
    if name == "v0":  # the original skeleton wording
        system = ("You answer questions using only the numbered sources. "
                  "Give the shortest answer that is correct, then cite the source number like [1].")
        return [{"role": "system", "content": system}, {"role": "user", "content": f"Sources:\n{src}\n\nQuestion: {question}"}]
    if name == "short":
        system = ("Answer the question with a short phrase copied from the sources, at most five words, "
                  "followed by the source number like [1]. Do not write a sentence.")
        return [{"role": "system", "content": system}, {"role": "user", "content": f"Sources:\n{src}\n\nQuestion: {question}"}]
    if name == "q_first":
        system = SYSTEM_RAG
        user = f"Question: {question}\n\nSources:\n{src}\n\nQuestion: {question}\nAnswer in a few words."
        return [{"role": "system", "content": system}, {"role": "user", "content": user}]
    if name == "one_shot":
        system = SYSTEM_RAG
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": ONE_SHOT_USER},
            {"role": "assistant", "content": ONE_SHOT_ANSWER},
            {"role": "user", "content": f"Sources:\n{src}\n\nQuestion: {question}"},
        ]
    if name == "one_shot_short":
        system = ("Answer with a short phrase copied from the sources (a few words, not a sentence), "
                  "then the source number like [1].")
        return [
            {"role": "system", "content": system},
            {"role": "user", "content": ONE_SHOT_USER},
            {"role": "assistant", "content": ONE_SHOT_ANSWER},
            {"role": "user", "content": f"Sources:\n{src}\n\nQuestion: {question}"},
        ]
    if name in ("few_shot", "few_shot_v0"):
        system = SYSTEM_RAG if name == "few_shot_v0" else (
            "Answer with the few words from the source that answer the question, then the source number like [1].")
        messages = [{"role": "system", "content": system}]
        for source, q, a in FEW_SHOT:
            messages += [{"role": "user", "content": f"Sources:\n{source}\n\nQuestion: {q}"},
                         {"role": "assistant", "content": a}]
        return messages + [{"role": "user", "content": f"Sources:\n{src}\n\nQuestion: {question}"}]
    raise SystemExit(f"unknown variant {name!r}")


def first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip()


def first_sentence(text: str) -> str:
    import re

    return re.split(r"(?<=[a-z0-9)][.!?])\s+(?=[A-Z])", first_line(text), maxsplit=1)[0]


def load_questions(n: int, seed: int) -> list[tuple[str, str, str, list[str]]]:
    data = json.loads(SQUAD.read_text())
    rows = [
        (qa["question"], article["title"].replace("_", " "), paragraph["context"], [a["text"] for a in qa["answers"]])
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    ]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=30)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default="v0,short,q_first,one_shot,one_shot_short")
    parser.add_argument("--show", type=int, default=0, help="print the first N raw replies per variant")
    parser.add_argument("--dump", default="", help="write raw replies per variant to this JSON file")
    args = parser.parse_args()
    if not SQUAD.is_file():
        print(f"shared SQuAD data not found at {SQUAD}; nothing to measure")
        return 0

    from ragtune.evaluate.answer_metrics import exact_match, f1
    from ragtune.generate import load_generator
    from ragtune.generate.prompts import parse_answer

    rows = load_questions(args.questions, args.seed)
    generator = load_generator()
    results = []
    dump: dict[str, list[dict]] = {}
    for name in args.variants.split(","):
        batch = [variant_messages(name, q, t, c) for q, t, c, _ in rows]
        start = time.perf_counter()
        replies = generator.generate(batch, max_new_tokens=args.max_new_tokens)
        seconds = time.perf_counter() - start
        parsed = [parse_answer(r.text) for r in replies]
        dump[name] = [{"question": q, "golds": g, "raw": r.text} for (q, _, _, g), r in zip(rows, replies)]
        if args.dump:
            Path(args.dump).write_text(json.dumps(dump, indent=1))
        f1s = [f1(p.answer, golds) for p, (_, _, _, golds) in zip(parsed, rows)]
        ems = [exact_match(p.answer, golds) for p, (_, _, _, golds) in zip(parsed, rows)]
        f1_line = sum(f1(first_line(p.answer), g) for p, (_, _, _, g) in zip(parsed, rows)) / len(rows)
        f1_sent = sum(f1(first_sentence(p.answer), g) for p, (_, _, _, g) in zip(parsed, rows)) / len(rows)
        words = sum(len(p.answer.split()) for p in parsed) / len(parsed)
        cites = sum(1 in p.cited for p in parsed) / len(parsed)
        results.append((name, sum(f1s) / len(f1s), sum(ems) / len(ems), words, cites, seconds, f1_line, f1_sent))
        print(f"  {name}: F1 {results[-1][1]:.3f} ({seconds:.0f}s)", file=sys.stderr)
        for (q, _, _, golds), reply, p in list(zip(rows, replies, parsed))[: args.show]:
            print(f"    Q {q!r} gold {golds[0]!r}\n      raw {reply.text!r}\n      ans {p.answer!r}", file=sys.stderr)
    base = results[0][1] or 1e-9
    print(f"\n{len(rows)} SQuAD dev questions with gold paragraph; max_new_tokens {args.max_new_tokens}")
    print(f"{'variant':16} {'F1':>6} {'EM':>6} {'words':>6} {'cites[1]':>8} {'seconds':>8} {'F1 x base':>9} "
          f"{'F1 line1':>8} {'F1 sent1':>8}")
    for name, mf1, mem, words, cites, seconds, f1_line, f1_sent in results:
        print(f"{name:16} {mf1:6.3f} {mem:6.3f} {words:6.1f} {cites:8.2f} {seconds:8.1f} {mf1 / base:9.2f} "
              f"{f1_line:8.3f} {f1_sent:8.3f}")
    return 0


if __name__ == "__main__":
    from ragtune.progress import hide_library_bars

    hide_library_bars()  # ragtune's bars only: no "Loading weights" from transformers
    sys.exit(main())
