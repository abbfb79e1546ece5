"""A realistic fake compare run (5 arms × 40 questions + a freshness subset) for the report tests.

Quality is built in on purpose: base is poor, rag good, ft fair but stale on changed facts, ft_rag and raft
best; timings differ by arm the way they do on a CPU (retrieval adds prompt length, hence generation time).
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import numpy as np

ARMS = ("base", "rag", "ft", "ft_rag", "raft")
# Probability that an arm answers a question exactly right / with a partial answer.
SKILL = {"base": (0.05, 0.15), "rag": (0.45, 0.25), "ft": (0.35, 0.2), "ft_rag": (0.6, 0.2), "raft": (0.72, 0.15)}
FRESH_SKILL = {"base": (0.0, 0.1), "rag": (0.6, 0.2), "ft": (0.05, 0.1), "ft_rag": (0.5, 0.2), "raft": (0.65, 0.2)}
TEAMS = ["Harbour Logistics", "Tidewater Lab", "Kestrel Ops", "Amber Desk", "Northgate Survey", "Lumen Archive"]
PLACES = ["Brackwater Quay", "Pier 9", "Saltmarsh Depot", "Glasshouse Annex", "Old Customs Hall"]
WRONG = ["I don't know", "The manager", "In 2019", "Building C", "Every Monday", "Around 40 people"]


class HashingEmbedder:
    """A tiny deterministic bag-of-words embedder standing in for MiniLM in tests: (n, 64) unit vectors."""

    dim = 64

    def encode(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for token in text.lower().split():
                h = int(hashlib.md5(token.encode()).hexdigest(), 16)
                out[i, h % self.dim] += 1.0 if (h >> 8) % 2 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.maximum(norms, 1e-12)


def _facts(rng: random.Random, n: int, fresh: bool) -> list[dict]:
    facts = []
    for i in range(n):
        kind = i % 4
        team = rng.choice(TEAMS)
        doc = f"handbook/{'teams' if kind < 2 else 'facilities'}/{team.lower().replace(' ', '-')}.md"
        if kind == 0:
            q, a = f"Who leads the {team} team?", rng.choice(["Mira Okonkwo", "Tobias Renn", "Ilse Varga", "Dara Quint"])
        elif kind == 1:
            q, a = f"How many people work in {team}?", str(rng.randint(4, 60))
        elif kind == 2:
            q, a = f"Where is the {team} store room?", rng.choice(PLACES)
        else:
            q, a = f"What is the access code of {team}?", f"{rng.choice('KLMNPR')}-{rng.randint(100, 999)}"
        if fresh:
            q = q + " (after the 2026 update)"
        facts.append({"qid": f"{'f' if fresh else 'q'}{i:03d}", "question": q, "answer": a, "doc_id": doc,
                      "chunk_id": f"{doc}#{rng.randint(0, 3)}", "team": team})
    return facts


def _citations(rng: random.Random, fact: dict, hit: bool) -> list[dict]:
    passages = []
    gold_at = rng.randint(0, 3) if hit else None
    for number in range(1, 5):
        if number - 1 == gold_at:
            doc, chunk = fact["doc_id"], fact["chunk_id"]
            text = f"{fact['team']}: {fact['question'].rstrip('?')} — the handbook says {fact['answer']}. Updated 2026."
        else:
            other = rng.choice(TEAMS)
            doc = f"handbook/policies/{other.lower().replace(' ', '-')}-policy.md"
            chunk = f"{doc}#{rng.randint(0, 5)}"
            text = f"{other} policy: visitors sign in at {rng.choice(PLACES)}; badges are renewed every {rng.randint(2, 12)} months."
        passages.append({"number": number, "doc_id": doc, "chunk_id": chunk, "title": doc.rsplit("/", 1)[-1],
                         "text": text, "score": round(1.0 - 0.1 * number + rng.random() * 0.05, 4), "cited": False})
    return passages


def make_rows(seed: int = 7, n_questions: int = 40, n_fresh: int = 12) -> list[dict]:
    """Prediction rows of a fake run, following the predictions.jsonl row contract."""
    rng = random.Random(seed)
    rows = []
    for fresh, facts in ((False, _facts(rng, n_questions, False)), (True, _facts(rng, n_fresh, True))):
        for fact in facts:
            for arm in ARMS:
                exact, partial = (FRESH_SKILL if fresh else SKILL)[arm]
                roll = rng.random()
                if roll < exact:
                    answer = fact["answer"]
                elif roll < exact + partial:
                    answer = f"It is {fact['answer']} according to the records of {fact['team']}"
                else:
                    answer = rng.choice(WRONG)
                retrieval = arm in ("rag", "ft_rag", "raft")
                citations = _citations(rng, fact, hit=rng.random() < 0.8) if retrieval else []
                if citations:
                    gold = [c for c in citations if c["chunk_id"] == fact["chunk_id"]]
                    (gold[0] if gold and rng.random() < 0.85 else rng.choice(citations))["cited"] = True
                tuned_speed = 0.9 if arm in ("ft", "ft_rag", "raft") else 1.0
                rows.append({
                    "qid": fact["qid"], "arm": arm, "question": fact["question"], "answer": answer,
                    "gold_answers": [fact["answer"]], "gold_doc_ids": [fact["doc_id"]],
                    "gold_chunk_ids": [fact["chunk_id"]], "citations": citations,
                    "retrieve_ms": round(rng.lognormvariate(2.6, 0.3), 2) if retrieval else 0.0,
                    "generate_ms": round(rng.lognormvariate(6.4 if retrieval else 5.7, 0.25) * tuned_speed, 2),
                    "prompt_tokens": 420 if retrieval else 60, "completion_tokens": rng.randint(4, 24),
                    "freshness": fresh,
                })
    return rows


SETUP = {
    "models": {"llm": "SmolLM2-135M-Instruct", "embedder": "all-MiniLM-L6-v2"},
    "index": {"path": "/tmp/index", "build_s": 42.0, "size_bytes": 3_400_000, "chunks": 120},
    "arms": {"ft": {"train_s": 600.0, "peak_memory_mb": 2100}, "ft_rag": {"train_s": 600.0},
             "raft": {"train_s": 900.0, "peak_memory_mb": 2300}},
}


def write_fake_run(run_dir: Path, seed: int = 7, scenario=None) -> Path:
    """Score the fake rows and write results.json + predictions.jsonl into run_dir (no report)."""
    from ragtune.evaluate.run_files import dumps_predictions
    from ragtune.evaluate.scoring import score_run
    from ragtune.report.recommend import with_recommendation

    rows = make_rows(seed=seed)
    results = score_run(rows, setup=SETUP, scenario=scenario, seed=0, embedder=HashingEmbedder(), n_resamples=500)
    results = with_recommendation(results, scenario)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_text(results.to_json(), encoding="utf-8")
    (run_dir / "predictions.jsonl").write_text(dumps_predictions(rows), encoding="utf-8")
    return run_dir


def searched_results(results: dict) -> dict:
    """The fake run as `compare --search` would write it: rag searched over four trials, one over the p95 limit."""
    points = [
        {"trial": 0, "params": {"k": 3, "mode": "hybrid"}, "f1": 0.40, "latency_ms_p95": 100.0, "cost_per_1k": 0.002,
         "feasible": True},
        {"trial": 1, "params": {"k": 5, "mode": "hybrid"}, "f1": 0.55, "latency_ms_p95": 180.0, "cost_per_1k": 0.004,
         "feasible": True},
        {"trial": 2, "params": {"k": 5, "mode": "bm25"}, "f1": 0.70, "latency_ms_p95": 400.0, "cost_per_1k": 0.009,
         "feasible": False},
        {"trial": 3, "params": {"k": 3, "mode": "dense"}, "f1": 0.30, "latency_ms_p95": 90.0, "cost_per_1k": 0.002,
         "feasible": True},
    ]
    rag = {"arm": "rag", "params": {"k": 5, "mode": "hybrid"}, "validation": {"f1": 0.55}, "trial": 1,
           "default_params": {"k": 3, "mode": "hybrid"}, "default_validation": {"f1": 0.40},
           "space": {"k": [3, 5], "mode": ["hybrid", "dense", "bm25"]}, "sampler": "coordinate+tpe", "max_p95_ms": 250.0,
           "max_cost_per_1k": None, "trials": 4, "feasible_trials": 3, "search_s": 1.0,
           "test": {"f1": 0.48}, "default_test": {"f1": 0.41}, "gain_f1": 0.07, "default_trial": 0,
           "trial_results": points}
    return {**results, "search": {"validation_questions": 12, "test_questions": 28, "validation_share": 0.3,
                                  "seed": 0, "by": "document", "validation_source": "synth", "arms": {"rag": rag}}}
