"""The adapters a search's training settings answer with: one per distinct (epochs, learning rate), trained once.

An adapter is trained into the search folder (`<root>/<kind>-e<epochs>-lr<lr>-<key>`, the key a hash of its
training config and of the training data) on first use, then reused by later trials, by `--resume` and by the
test run of `compare --search` — as ragtune.workflows.chunk_indexes keeps re-chunked indexes. A folder is
written under a temporary name and renamed into place, so a killed search never leaves half an adapter; one
whose key no longer matches (other data, model or seed) is another folder, never reused.

The training budget (seconds, `--search-train-minutes`, or `--search-train-usd` at the cost model's training
price) caps what the whole search spends training, every arm and kind together: a configuration whose estimated training (seconds per example-epoch measured on the adapters
trained so far, times examples x epochs) exceeds what is left raises OverBudget, which the search records as a
skipped trial with the reason. The defaults' adapter is always trained (the baseline a search must beat), and an
adapter already there costs nothing. `compare --train` registers the adapter it trained with the defaults
(`seed`), so the search does not train it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ragtune.atomic import place_dir
from ragtune.types import Example

logger = logging.getLogger(__name__)

ADAPTERS = "adapters"  # the folder, under a search's out folder, that holds the adapters its trials trained
MANIFEST = "search_adapter.json"  # beside the adapter's own files: its key, training settings and seconds

# (epochs, lr, out_dir) -> {"path", "train_s", "examples", ...}: train one adapter into out_dir/<kind>
Trainer = Callable[[int, float, Path], Mapping[str, Any]]


class OverBudget(Exception):
    """Training an adapter would exceed what is left of the search's training budget: the reason."""


@dataclass(frozen=True)
class TrainedAdapter:
    """One adapter of the search: its folder, training settings and cost, and whether this call trained it."""

    path: str
    epochs: int
    lr: float
    train_s: float  # the seconds its training took (whenever it was trained)
    examples: int
    trained_now: bool = False  # trained by this call (else reused: a trial answering with it cost no training)
    seeded: bool = False  # trained outside the search (compare --train's adapter with the defaults)


def data_hash(examples: Sequence[Example]) -> str:
    """A hash of the training examples (their content, in order): part of every adapter's key."""
    digest = hashlib.sha256()
    for example in examples:
        digest.update(json.dumps(asdict(example), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


class TrainedAdapters:
    """The adapters of one kind ('sft', 'raft') a search trains under `root`, within `budget_s` seconds (None:
    no budget). `config` is what else the training depends on (model, seed, data hash, RAFT layout): the key."""

    def __init__(self, kind: str, root: Path, trainer: Trainer, config: Mapping[str, Any], *,
                 budget_s: float | None = None):
        self.kind, self.root, self.trainer = kind, Path(root), trainer
        self.config, self.budget_s = dict(config), budget_s
        self._adapters: dict[tuple[int, float], TrainedAdapter] = {}

    def key(self, epochs: int, lr: float) -> str:
        text = json.dumps({"kind": self.kind, **self.config, "epochs": int(epochs), "lr": float(lr)}, sort_keys=True,
                          default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def path_of(self, epochs: int, lr: float) -> Path:
        return self.root / f"{self.kind}-e{int(epochs)}-lr{float(lr):g}-{self.key(epochs, lr)}"

    def seed(self, epochs: int, lr: float, path: str, train_s: float, examples: int) -> None:
        """Answer (epochs, lr) with an adapter trained elsewhere (compare --train's, with the defaults): not the
        search's cost, and not trained again."""
        self._adapters[(int(epochs), float(lr))] = TrainedAdapter(str(path), int(epochs), float(lr), float(train_s),
                                                                  int(examples), seeded=True)

    def get(self, epochs: int, lr: float, *, exempt: bool = False) -> TrainedAdapter:
        """The adapter trained with (epochs, lr): kept, or trained now. OverBudget when training it would exceed
        the budget left (`exempt`: the defaults' adapter, trained whatever the budget)."""
        pair = (int(epochs), float(lr))
        if pair in self._adapters:
            return _reused(self._adapters[pair])
        kept = self._kept(*pair)
        if kept is not None:
            self._adapters[pair] = kept
            return kept
        if not exempt:
            self._check_budget(*pair)
        adapter = self._train(*pair)
        self._adapters[pair] = _reused(adapter)
        return adapter

    def spent_s(self) -> float:
        """Seconds the adapters in the folder took to train — every kind's: the budget is the whole search's (this
        run's and a resumed one's training; a seeded adapter is not the search's)."""
        found = (_read_manifest(m) for m in self.root.glob(f"*/{MANIFEST}"))
        return sum(a.train_s for a in found if a is not None)

    def seconds_per_example_epoch(self) -> float | None:
        """Training seconds per example-epoch over the adapters trained so far (the search's, else the seeded
        one); None before any."""
        measured = [a for a in self._measured() if a.train_s > 0 and a.examples > 0]
        if not measured:
            return None
        return sum(a.train_s for a in measured) / sum(a.examples * a.epochs for a in measured)

    def _measured(self) -> list[TrainedAdapter]:
        return self._in_folder() + [a for a in self._adapters.values() if a.seeded]

    def estimate_s(self, epochs: int) -> float | None:
        """Seconds training `epochs` epochs is expected to take (None: nothing measured yet)."""
        rate = self.seconds_per_example_epoch()
        examples = next((a.examples for a in self._measured()), None)
        return None if rate is None or examples is None else rate * examples * epochs

    def _check_budget(self, epochs: int, lr: float) -> None:
        if self.budget_s is None:
            return
        estimate = self.estimate_s(epochs)
        left = self.budget_s - self.spent_s()
        if estimate is None:  # the first adapter: its training is the measurement
            if left <= 0:
                raise OverBudget(f"training {epochs} epoch(s) at lr {lr:g}: the {self.budget_s:.0f} s training budget "
                                 f"is spent")
            return
        if estimate > left:
            raise OverBudget(f"training {epochs} epoch(s) at lr {lr:g} needs ~{estimate:.0f} s, {max(left, 0):.0f} s "
                             f"of the {self.budget_s:.0f} s training budget left")

    def _in_folder(self) -> list[TrainedAdapter]:
        """The adapters of this key in the folder (this run's and a resumed one's), by folder name."""
        found = (_read_manifest(m) for m in sorted(self.root.glob(f"{self.kind}-*/{MANIFEST}")))
        return [a for a in found if a is not None and Path(a.path) == self.path_of(a.epochs, a.lr)]

    def _kept(self, epochs: int, lr: float) -> TrainedAdapter | None:
        """The adapter already in the folder (an earlier run's) with this key, else None."""
        manifest = self.path_of(epochs, lr) / MANIFEST
        if not manifest.is_file():
            return None
        adapter = _read_manifest(manifest)
        if adapter is not None:
            logger.info("%s adapter %s: reusing %s", self.kind, (epochs, lr), adapter.path)
        return adapter

    def _train(self, epochs: int, lr: float) -> TrainedAdapter:
        final = self.path_of(epochs, lr)
        tmp = final.with_name(f".{final.name}.partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        info = self.trainer(epochs, lr, tmp)
        trained = Path(info["path"])
        adapter = TrainedAdapter(str(final), epochs, lr, float(info["train_s"]), int(info["examples"]),
                                 trained_now=True)
        (trained / MANIFEST).write_text(json.dumps({"key": self.key(epochs, lr), "kind": self.kind, **self.config,
                                                    "epochs": epochs, "lr": lr, "train_s": adapter.train_s,
                                                    "examples": adapter.examples}, indent=2, default=str) + "\n",
                                        encoding="utf-8")
        place_dir(trained, final, overwrite=True)
        shutil.rmtree(tmp, ignore_errors=True)
        logger.info("%s adapter (%d epochs, lr %g): %.1f s, %s", self.kind, epochs, lr, adapter.train_s, final)
        return adapter


def _reused(adapter: TrainedAdapter) -> TrainedAdapter:
    return TrainedAdapter(adapter.path, adapter.epochs, adapter.lr, adapter.train_s, adapter.examples,
                          seeded=adapter.seeded)


def _read_manifest(path: Path) -> TrainedAdapter | None:
    try:
        row = json.loads(path.read_text(encoding="utf-8"))
        return TrainedAdapter(str(path.parent), int(row["epochs"]), float(row["lr"]), float(row["train_s"]),
                              int(row["examples"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class SearchTraining:
    """What a search trains its arms' adapters with: the training examples (the --train-data file, else
    synthesised from the index; made once, on first use), the budget, and one TrainedAdapters per kind under
    `root` (shared by the arms of that kind). `trained[kind]`: compare --train's adapter info (path, train_s,
    examples, epochs), answered with for the defaults when it was trained with them."""

    def __init__(self, config: Any, index: Any, root: Path, trained: Mapping[str, Mapping[str, Any]] | None = None):
        self.config, self.index, self.root = config, index, Path(root)
        self.trained = dict(trained or {})
        self._examples: dict[str, list[Example]] = {}
        self._adapters: dict[str, TrainedAdapters] = {}

    @property
    def budget_s(self) -> float | None:
        """--search-train-minutes, and --search-train-usd at the cost model's training price: the smaller."""
        limits = []
        if self.config.search_train_minutes is not None:
            limits.append(self.config.search_train_minutes * 60)
        usd_per_s = self.config.cost.training_cost(1.0)
        if self.config.search_train_usd is not None and usd_per_s > 0:
            limits.append(self.config.search_train_usd / usd_per_s)
        return min(limits) if limits else None

    def defaults(self, kind: str) -> tuple[int, float]:
        """(epochs, lr) the arm is trained with when nothing is searched (compare --train's)."""
        from ragtune.train.config import FinetuneConfig
        from ragtune.workflows.train_arms import DEFAULT_EPOCHS

        return int(self.config.train_epochs or DEFAULT_EPOCHS[kind]), float(FinetuneConfig.model_fields["lr"].default)

    def examples(self, kind: str) -> list[Example]:
        """The QA examples `kind` is trained on (compare --train's: the QA file, else the kind's synthesis)."""
        if kind not in self._examples:
            from ragtune.workflows.train_arms import training_examples

            self._examples[kind] = training_examples(self.index, self.config.train_data, model=self.config.model,
                                                     kind=kind, seed=self.config.seed)
        return self._examples[kind]

    def adapters(self, kind: str) -> TrainedAdapters:
        """The adapters of `kind` (created on first use; compare's adapter seeded for the defaults)."""
        if kind not in self._adapters:
            settings = self._settings(kind)
            config = {"model": self.config.model, "seed": self.config.seed, "settings": settings,
                      "data": data_hash(self.examples(kind))}

            def trainer(epochs: int, lr: float, out: Path) -> Mapping[str, Any]:
                from ragtune.workflows.train_arms import train_adapters

                return train_adapters(self.index, [kind], out, model=self.config.model,
                                      examples=self.examples(kind), epochs=epochs, seed=self.config.seed,
                                      settings={kind: {**settings, "lr": lr}})[kind]

            adapters = TrainedAdapters(kind, self.root / ADAPTERS, trainer, config, budget_s=self.budget_s)
            info = self.trained.get(kind)
            epochs, lr = self.defaults(kind)
            plan = (info or {}).get("plan") or {}
            if info and int(info.get("epochs") or 0) == epochs and plan.get("examples") == plan.get("available"):
                adapters.seed(epochs, lr, info["path"], float(info.get("train_s") or 0.0), int(info["examples"]))
            self._adapters[kind] = adapters
        return self._adapters[kind]

    def _settings(self, kind: str) -> dict[str, Any]:
        """The data options compare --train trains `kind` with (RAFT: the layout the raft arm answers with)."""
        from ragtune.workflows.train_arms import raft_layout

        return raft_layout(self.config) if kind == "raft" else {}
