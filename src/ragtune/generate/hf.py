"""Local transformers backend: batched greedy (or sampled) chat generation on CPU.

Prompts are rendered with the tokenizer's chat template and LEFT-padded, so every row's last position is the
real end of its prompt and generation continues from there. A batch is sorted by prompt length before it is
split into sub-batches of `batch_size` (less padding, less wasted compute) and the order is restored after.

Shared prefix: every turn before the last (the system prompt and any worked examples) is the same for all the
questions of a prompt style, and it is most of a guided prompt (231 of ~350 tokens for RAG). Its keys and values
are computed once per generate call, alone, and every row continues from a copy of them: the layout is
[prefix][padding][row's own tokens], the padding masked out and the positions counted over real tokens, so a row
sees exactly the positions and attention it would see unpadded. The prefix is computed alone the same way whether a
question is asked alone (ask, serve) or among many (compare).

Rounds: with more than one row, generation runs ROUND_TOKENS new tokens at a time and only the rows still going
continue (regrouped by length, from their prompt plus their tokens so far), instead of every row of a batch
decoding until its longest one ends. Greedy replies are the same tokens either way (tests check it); on the
demo's 210 answers and 51 synthesised questions they were identical.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ragtune.errors import ConfigError, InputError
from ragtune.generate.base import Messages
from ragtune.types import Generation

log = logging.getLogger(__name__)

MIN_SHARED_PREFIX = 16  # tokens; a shorter leading turn is not worth a separate forward pass
# New tokens per round: rows still going after a round are regrouped and continue, so a batch stops waiting for its
# longest row (see HFGenerator._generate_rows)
ROUND_TOKENS = 16


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """Building a PeftModel without the FutureWarning peft (0.17) triggers by asking transformers (5.x) the
    deprecated `is_gradient_checkpointing` on every LoRA load: nothing a user can act on. Scoped, not global."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


class HFGenerator:
    """A local Hugging Face causal LM, optionally with a peft (LoRA) adapter on top.

    `.model` and `.tokenizer` are public so training can reuse a loaded model.
    """

    constrains_spans = True  # generate(..., spans_of=) decodes span answers (ragtune.generate.base.generate_spans)

    def __init__(
        self,
        model_dir: str | Path,
        adapter: str | Path | None = None,
        *,
        batch_size: int = 8,
        temperature: float = 0.0,
        model_id: str | None = None,
        merge_adapter: bool = True,
        attn_implementation: str = "sdpa",
        num_threads: int | None = None,
        stop_at_answer_line: bool = False,
        share_prefix: bool = True,
        round_tokens: int = ROUND_TOKENS,
    ):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model_dir = Path(model_dir)
        self.model_dir = model_dir
        self.batch_size = batch_size
        self.temperature = temperature
        self.num_threads = num_threads
        self.stop_at_answer_line = stop_at_answer_line
        self.share_prefix = share_prefix
        self.round_tokens = round_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if not getattr(self.tokenizer, "chat_template", None):
            raise ConfigError(f"the tokenizer in {str(model_dir)!r} has no chat template; use an instruct/chat model")
        # sdpa vs eager attention: compared in bench/bench_generate.py; eager is the fallback for old archs.
        try:
            model = AutoModelForCausalLM.from_pretrained(
                model_dir, dtype=torch.float32, attn_implementation=attn_implementation
            )
        except (ValueError, ImportError):
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
        self.adapter = Path(adapter) if adapter else None
        if self.adapter is not None:
            model = _apply_adapter(model, self.adapter, model_dir, merge=merge_adapter)
        model.eval()
        self.model = model
        name = model_id or _model_name(model_dir)
        self.model_id = f"{name}+{self.adapter.name}" if self.adapter else name
        self._eos_ids = _eos_ids(self.tokenizer, model)
        # a row's reply ends at its end of sequence, or at the padding generate puts after a row a stop ended
        pad = self.tokenizer.pad_token_id
        self._end_ids = self._eos_ids if pad in self._eos_ids else [*self._eos_ids, pad]
        self._max_positions = int(getattr(model.config, "max_position_embeddings", 0) or 0)
        self._specials: list[str] | None = None  # special-token strings, longest first (_as_text)
        self._vocab: Any = None  # token texts for span answers (ragtune.generate.extract), made on first use
        self._cache_keyword = "cache"  # generate's keyword for a prefilled cache (set by _prefix_cache)
        # One generate at a time per model (serve calls from threads; the CPU is the bottleneck anyway).
        self._lock = threading.Lock()

    def render(self, batch: list[Messages]) -> list[str]:
        """The prompt strings the model sees (chat template with the assistant turn opened)."""
        prompts = []
        for messages in batch:
            if not messages or not all(isinstance(m, dict) and "role" in m and "content" in m for m in messages):
                raise InputError(f"each conversation must be a non-empty list of {{role, content}} dicts: {messages!r}")
            messages = [{**m, "content": self._as_text(m["content"])} for m in messages]
            prompts.append(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
        return prompts

    def _as_text(self, content: Any) -> Any:
        """Message text with the tokenizer's special-token strings broken by a zero-width space, so that a
        `<|im_start|>` typed in a question or found in a passage is read as text, never as a role token (the
        rendered prompt is tokenized with special tokens on, for the template's own)."""
        if not isinstance(content, str):
            return content
        if getattr(self, "_specials", None) is None:
            tokens = set(getattr(self.tokenizer, "all_special_tokens", []) or [])
            decoder = getattr(self.tokenizer, "added_tokens_decoder", {}) or {}
            tokens |= {t.content for t in decoder.values() if getattr(t, "special", False)}
            self._specials = sorted((t for t in tokens if len(t) > 1), key=len, reverse=True)
        for token in self._specials:
            if token in content:
                content = content.replace(token, token[0] + "\u200b" + token[1:])
        return content

    def generate(
        self, batch: list[Messages], max_new_tokens: int = 64, *, done: Callable[[str], bool] | None = None,
        spans_of: Sequence[Sequence[str] | None] | None = None,
    ) -> list[Generation]:
        """One Generation per conversation, same order; grouped by shared prefix, sorted by length and split into
        sub-batches inside. `done(reply so far)` True ends a row early (what follows would be thrown away by its
        caller); by default a finished answer line when the generator stops at answer lines, else nothing.
        `spans_of`: per conversation, the passages its reply must be a span of (ragtune.generate.extract), the
        span ended by a citation bracket or a newline; None for one without passages (it answers freely)."""
        if not batch:
            return []
        if spans_of is not None and len(spans_of) != len(batch):
            raise InputError(f"spans_of has {len(spans_of)} entries for {len(batch)} conversations")
        if done is None and self.stop_at_answer_line:
            from ragtune.generate.prompts import answer_line_complete

            done = answer_line_complete
        prompts = self.render(batch)
        # The chat template already holds the special tokens (BOS/im_start): don't add them twice.
        encoded = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        for ids in encoded:
            if self._max_positions and len(ids) + max_new_tokens > self._max_positions:
                raise InputError(
                    f"prompt of {len(ids)} tokens + {max_new_tokens} new tokens exceeds the model's context of "
                    f"{self._max_positions}: retrieve fewer passages (k) or use shorter chunks"
                )
        constraints = None
        if spans_of is not None:
            from ragtune.generate.extract import SpanConstraint, TokenVocab

            if self._vocab is None:
                self._vocab = TokenVocab(self.tokenizer)
            constraints = [None if texts is None else SpanConstraint(self._vocab, texts, self._end_ids)
                           for texts in spans_of]
        prefixes = self._prefix_lengths(batch, encoded)
        order = sorted(range(len(encoded)), key=lambda i: (encoded[i][: prefixes[i]], len(encoded[i])))
        results: list[Generation | None] = [None] * len(encoded)
        with self._lock, _torch_threads(choose_threads(self.num_threads)):
            start = 0
            while start < len(order):
                prefix = encoded[order[start]][: prefixes[order[start]]]
                group = [i for i in order[start:] if prefixes[i] == len(prefix) and encoded[i][: len(prefix)] == prefix]
                cache = self._prefix_cache(prefix) if prefix else None
                rows = self._generate_rows(group, encoded, max_new_tokens, len(prefix), cache, done, constraints)
                for row, generation in rows.items():
                    results[row] = generation
                start += len(group)
        return [r for r in results if r is not None]

    def _generate_rows(
        self, rows: list[int], encoded: list[list[int]], max_new_tokens: int, prefix_length: int, cache: Any,
        done: Callable[[str], bool] | None = None, constraints: list[Any] | None = None,
    ) -> dict[int, Generation]:
        """Generate for `rows` (length-sorted, one shared prefix) in rounds of `round_tokens` new tokens: after a
        round, rows that ended (end of sequence, `done`, the token limit) are done and the others
        are sorted again and continue in fresh batches from their prompt plus what they have generated.

        One batch used to decode until its longest row was done: on the demo's base arm most batches ran all 32
        steps for one rambling row while the others had ended after ~13. A row's continuation recomputes its own
        tokens (not the shared prefix) once per round. A single row is generated in one go.
        """
        generated: dict[int, list[int]] = {row: [] for row in rows}
        pending = list(rows)
        while pending:
            left = max_new_tokens - len(generated[pending[0]])  # every pending row has generated as many tokens
            step = min(self.round_tokens, left) if self.round_tokens and len(rows) > 1 else left
            going = []
            for first in range(0, len(pending), self.batch_size):
                batch = pending[first : first + self.batch_size]
                new = self._generate_padded(
                    [encoded[r] + generated[r] for r in batch], step, prefix_length, cache, [generated[r] for r in batch],
                    done, None if constraints is None else [constraints[r] for r in batch],
                )
                for row, tokens in zip(batch, new, strict=True):
                    generated[row] += tokens
                    if not self._row_done(generated[row], max_new_tokens, done):
                        going.append(row)
            pending = sorted(going, key=lambda r: len(encoded[r]) + len(generated[r]))
        results = {}
        for row in rows:
            kept = _until_eos(generated[row], self._end_ids)
            text = self.tokenizer.decode(kept, skip_special_tokens=True).strip()
            results[row] = Generation(text=text, prompt_tokens=len(encoded[row]), completion_tokens=len(kept))
        return results

    def _row_done(self, tokens: list[int], max_new_tokens: int, done: Callable[[str], bool] | None) -> bool:
        if len(tokens) >= max_new_tokens or any(token in self._end_ids for token in tokens):
            return True
        return done is not None and done(self.tokenizer.decode(tokens, skip_special_tokens=True))

    def _prefix_lengths(self, batch: list[Messages], encoded: list[list[int]]) -> list[int]:
        """Per row, how many leading tokens are its earlier turns (0 when not shared or too short to pay)."""
        if not self.share_prefix:
            return [0] * len(batch)
        lengths, rendered = [], {}
        for messages, ids in zip(batch, encoded, strict=True):
            head = [{**m, "content": self._as_text(m["content"])} for m in messages[:-1]]
            key = repr(head)
            if key not in rendered:
                text = self.tokenizer.apply_chat_template(head, tokenize=False) if head else ""
                rendered[key] = self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
            prefix = rendered[key]
            # the earlier turns must tokenize to a true prefix of the whole prompt and leave a token to continue from
            shared = MIN_SHARED_PREFIX <= len(prefix) < len(ids) and ids[: len(prefix)] == prefix
            lengths.append(len(prefix) if shared else 0)
        return lengths

    def _prefix_cache(self, prefix: list[int]) -> Any:
        """The model's keys and values for `prefix` (one row), or None when the model's cache cannot be shared."""
        import inspect

        import torch
        from transformers import DynamicCache

        # only the last position's logits (not 49k-wide rows for every prefix token) where the model allows it
        last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.model.forward).parameters else {}
        with torch.inference_mode():
            output = self.model(input_ids=torch.tensor([prefix], device=self.model.device), use_cache=True, **last_only)
        # transformers 5 names it `cache` (generate's keyword too); 4.x `past_key_values`
        self._cache_keyword = "cache" if getattr(output, "cache", None) is not None else "past_key_values"
        cache = getattr(output, self._cache_keyword, None)
        if (not isinstance(cache, DynamicCache) or any(getattr(cache, "is_linear", ()))
                or cache.get_seq_length() != len(prefix)):
            return None
        return cache

    def _generate_padded(
        self, input_ids: list[list[int]], max_new_tokens: int, prefix_length: int = 0, prefix_cache: Any = None,
        generated: list[list[int]] | None = None, done: Callable[[str], bool] | None = None,
        constraints: list[Any] | None = None,
    ) -> list[list[int]]:
        """The new tokens of each row (a finished row's tail is padding); `generated`: per row, the tokens of its
        own reply already at the end of its input (an earlier round's), which `done` and `constraints` (per row, a
        SpanConstraint) read too."""
        import torch
        from transformers import GenerationConfig

        generate_kwargs: dict[str, Any] = {}
        if prefix_cache is None:
            prefix_length = 0
        # the inputs follow the model (CPU here; a caller may have moved `.model` to a GPU)
        padded = self.tokenizer.pad(
            {"input_ids": [ids[prefix_length:] for ids in input_ids]}, padding=True, return_tensors="pt"
        ).to(self.model.device)
        tokens, mask = padded["input_ids"], padded["attention_mask"]
        if prefix_length:
            # [prefix][padding][own tokens]: positions come from the mask's running count, so they are unpadded ones
            head = torch.tensor([input_ids[0][:prefix_length]], device=tokens.device).expand(len(input_ids), -1)
            tokens = torch.cat([head, tokens], dim=1)
            mask = torch.cat([torch.ones_like(head), mask], dim=1)
            with torch.inference_mode():
                cache = copy.deepcopy(prefix_cache)
                cache.batch_repeat_interleave(len(input_ids))
            generate_kwargs[self._cache_keyword] = cache
        config = GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=self.temperature > 0,
            eos_token_id=self._eos_ids,
            pad_token_id=self.tokenizer.pad_token_id,
            **({"temperature": self.temperature, "top_p": 1.0} if self.temperature > 0 else {}),
        )
        stopping = None
        if done is not None:
            from transformers import StoppingCriteriaList

            stopping = StoppingCriteriaList([_ReplyDone(self.tokenizer, tokens.shape[1], done, generated)])
        if constraints is not None:
            from transformers import LogitsProcessorList

            generate_kwargs["logits_processor"] = LogitsProcessorList(
                [_Constrained(constraints, tokens.shape[1], generated)]
            )
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=tokens, attention_mask=mask, generation_config=config, stopping_criteria=stopping,
                **generate_kwargs,
            )
        return out[:, tokens.shape[1] :].tolist()  # (batch, generated) — prompt stripped


def choose_threads(requested: int | None = None) -> int:
    """CPU threads for one generate call: `requested`, else torch's default, else 1 on a busy machine.

    torch's OpenMP threads synchronise at every op; when the CPU is oversubscribed a preempted thread
    stalls the others. Measured with bench/bench_generate.py on 2 cores at load ~10: 1 thread 3.0 tok/s,
    2 threads 0.4 tok/s (batch 1). So with a 1-minute load average above cores + 1, use one thread.
    """
    import torch

    if requested:
        return requested
    default = torch.get_num_threads()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # not available on this platform
        return default
    return 1 if load > (os.cpu_count() or 1) + 1 else default


@contextlib.contextmanager
def _torch_threads(count: int) -> Iterator[None]:
    """Set torch's intra-op thread count for a block, restoring the previous value after."""
    import torch

    previous = torch.get_num_threads()
    if count != previous:
        log.debug("generating with %d torch thread(s) (was %d)", count, previous)
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count != previous:
            torch.set_num_threads(previous)


class _ReplyDone:
    """Per-row stopping: a sequence is done once `done(its reply so far)` (a complete answer line, see
    `answer_line_complete`; a complete question): the rest of a rambling reply would only be thrown away."""

    def __init__(self, tokenizer: Any, prompt_length: int, done: Callable[[str], bool],
                 earlier: list[list[int]] | None = None):
        self.tokenizer, self.prompt_length, self.done, self.earlier = tokenizer, prompt_length, done, earlier

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        rows = input_ids[:, self.prompt_length :].tolist()
        if self.earlier:  # the reply so far includes what earlier rounds generated
            rows = [before + row for before, row in zip(self.earlier, rows, strict=True)]
        texts = self.tokenizer.batch_decode(rows, skip_special_tokens=True)
        return torch.tensor([self.done(t) for t in texts], dtype=torch.bool, device=input_ids.device)


class _Constrained:
    """A logits processor: each row's next token restricted to what its SpanConstraint allows after its reply.
    (Greedy only: on 200 SQuAD questions, beam search over the allowed spans (4 beams) fell to F1 0.138 from
    greedy's 0.248, preferring short likely spans such as "he", at 10x the time.)"""

    def __init__(self, constraints: list[Any], prompt_length: int, earlier: list[list[int]] | None = None):
        self.constraints, self.prompt_length, self.earlier = constraints, prompt_length, earlier

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        rows = input_ids[:, self.prompt_length :].tolist()
        if self.earlier:  # the reply so far includes what earlier rounds generated
            rows = [before + row for before, row in zip(self.earlier, rows, strict=True)]
        mask = torch.full_like(scores, float("-inf"))
        for r, (constraint, reply) in enumerate(zip(self.constraints, rows, strict=True)):
            if constraint is None:  # a row without passages answers freely
                mask[r] = 0.0
            else:
                mask[r, sorted(constraint.allowed(reply))] = 0.0
        return scores + mask


def _until_eos(tokens: list[int], eos_ids: list[int]) -> list[int]:
    """Generated tokens up to (not including) the first end-of-sequence token; later ones are padding."""
    for position, token in enumerate(tokens):
        if token in eos_ids:
            return tokens[:position]
    return tokens


def _eos_ids(tokenizer: Any, model: Any) -> list[int]:
    ids: list[int] = []
    configured = getattr(model.generation_config, "eos_token_id", None)
    for value in (tokenizer.eos_token_id, configured):
        for token in value if isinstance(value, list) else [value]:
            if token is not None and token not in ids:
                ids.append(int(token))
    return ids


def _model_name(model_dir: Path) -> str:
    import json

    manifest = model_dir / "ragtune-manifest.json"
    if manifest.is_file():
        try:
            return json.loads(manifest.read_text()).get("model_id") or model_dir.name
        except ValueError:
            pass
    return model_dir.name


def _apply_adapter(model: Any, adapter: Path, model_dir: Path, *, merge: bool) -> Any:
    """Load a peft adapter onto the base model; merged into the weights for faster inference by default."""
    if not (adapter / "adapter_config.json").is_file():
        raise ConfigError(f"not a peft adapter folder (no adapter_config.json): {str(adapter)!r}")
    from ragtune.adapters import check_adapter

    check_adapter(adapter, model_dir)
    from peft import PeftModel

    try:
        with peft_quietly():
            peft_model = PeftModel.from_pretrained(model, str(adapter))
    except (ValueError, RuntimeError, KeyError) as exc:
        raise ConfigError(f"adapter {str(adapter)!r} does not fit the model {str(model_dir)!r}: {exc}") from exc
    log.info("loaded adapter %s", adapter)
    return peft_model.merge_and_unload() if merge else peft_model
