"""True token streaming with a local transformers model (the tiny random Llama from tests/conftest.py)."""

from __future__ import annotations

import json

import pytest
from serve_helpers import PLAIN_KEY, auth, make_app


@pytest.fixture(scope="module")
def tiny_generator(tiny_lm_dir):
    from ragtune.generate.hf import HFGenerator

    return HFGenerator(tiny_lm_dir, batch_size=4)


def events(text: str) -> list[dict]:
    out = []
    for block in text.split("\n\n"):
        if block.startswith("data: ") and block != "data: [DONE]":
            out.append(json.loads(block[6:]))
    return out


def test_stream_sends_decoded_text_then_sources(tmp_path, tiny_generator):
    from fastapi.testclient import TestClient

    from ragtune.serve.streaming import StreamingGenerator, can_stream

    assert can_stream(tiny_generator)
    app, _, _ = make_app(tmp_path, generator=tiny_generator)
    body = {"model": "rag", "max_tokens": 12, "messages": [{"role": "user", "content": "How many leave days?"}]}
    with TestClient(app) as client:
        streamed = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY), json={**body, "stream": True})
        plain = client.post("/v1/chat/completions", headers=auth(PLAIN_KEY), json=body).json()
    chunks = events(streamed.text)
    assert streamed.text.rstrip().endswith("data: [DONE]")
    final = chunks[-1]
    # a random tiny LM talks until max_tokens stops it: "length", streamed or not
    assert final["choices"][0]["finish_reason"] == plain["choices"][0]["finish_reason"] == "length"
    assert final["citations"] == plain["citations"]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    raw, _, sources = text.partition("\n\nSources:")
    # Greedy decoding, same prompt: the streamed raw reply parses to the answer the plain request returned.
    from ragtune.generate.prompts import parse_answer

    assert raw.strip() and parse_answer(raw).answer == plain["ragtune"]["answer"] == final["ragtune"]["answer"]
    assert len([c for c in chunks if c["choices"][0]["delta"].get("content")]) >= 2
    if plain["citations"]:
        assert sources.strip().startswith("[")


def test_streaming_generator_matches_plain_generation(tiny_generator):
    from ragtune.serve.streaming import StreamingGenerator

    messages = [[{"role": "user", "content": "Question: What is the capital of France?"}]]
    pieces: list[str] = []
    streamed = StreamingGenerator(tiny_generator, pieces.append).generate(messages, max_new_tokens=10)
    plain = tiny_generator.generate(messages, max_new_tokens=10)
    assert streamed == plain
    assert len(pieces) >= 2 and "".join(pieces).strip() == plain[0].text
    assert "generate" not in vars(tiny_generator.model)  # the model's own generate is back


def test_streaming_generator_passes_span_answers_on(tiny_generator):
    """A streamed span answer is the same constrained reply as an unstreamed one (answer_form "span")."""
    from ragtune.serve.streaming import StreamingGenerator

    messages = [[{"role": "user", "content": "Sources:\n[1] Paris is the capital of France.\n\nQuestion: Capital?"}]]
    spans_of = [["Paris is the capital of France."]]
    pieces: list[str] = []
    streaming = StreamingGenerator(tiny_generator, pieces.append)
    assert streaming.constrains_spans
    streamed = streaming.generate(messages, max_new_tokens=10, spans_of=spans_of)
    assert streamed == tiny_generator.generate(messages, max_new_tokens=10, spans_of=spans_of)
    assert streamed != tiny_generator.generate(messages, max_new_tokens=10)
    assert "".join(pieces).strip() == streamed[0].text
