"""Token batches, the resumable step stream, and the ``data:`` config of the LLaMA task.

Sequences are fixed-length rows of token ids with a length each: the ids past a row's length are
padding. A row of length L yields L - 1 next-token targets (position 0 is never predicted), so
padding never enters the loss and a packed row of ``seq_len`` tokens has ``seq_len - 1`` targets,
as in the GaLore reference (HF causal-LM shift). Sources: ``synthetic`` (a Markov chain with a
known entropy rate), ``files`` (local text/JSON/parquet through HF ``datasets``) and ``c4``
(``allenai/c4`` streamed from the hub through the same pipeline as ``files``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from optbench.errors import OptbenchError
from optbench.tasks.llama.tokenizer import BYTES, ByteTokenizer

IGNORE_INDEX = -100  # label of a position that is not a target (cross_entropy's ignore_index)


@dataclass(frozen=True)
class TokenBatch:
    input_ids: torch.Tensor  # (B, T) int64
    labels: torch.Tensor  # (B, T) int64: the ids, IGNORE_INDEX on padding
    n_targets: int  # next-token targets: labels[:, 1:] that are not IGNORE_INDEX; the task's tokens


def token_batch(ids: np.ndarray, lengths: np.ndarray, device: torch.device) -> TokenBatch:
    """Rows of ``ids`` whose positions at or past ``lengths`` are padding, as a batch on device."""
    labels = np.where(np.arange(ids.shape[1]) < lengths[:, None], ids, IGNORE_INDEX)
    n_targets = int(np.maximum(lengths - 1, 0).sum())
    return TokenBatch(
        torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64)).to(device),
        torch.from_numpy(labels.astype(np.int64)).to(device),
        n_targets,
    )


class SequenceSource(Protocol):
    """The training sequences of successive steps, with a position that can be saved."""

    def next_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        """One step's sequences: ids (sequences_per_step, seq_len) and their lengths."""
        ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: Mapping[str, Any]) -> None: ...


class StepStream:
    """Step batches (lists of micro-batches on ``device``) from a :class:`SequenceSource`."""

    def __init__(self, source: SequenceSource, micro_batch: int, device: torch.device) -> None:
        self.source, self.micro_batch, self.device = source, micro_batch, device

    def __iter__(self) -> Iterator[list[TokenBatch]]:
        return self

    def __next__(self) -> list[TokenBatch]:
        ids, lengths = self.source.next_sequences()
        mb = self.micro_batch
        return [
            token_batch(ids[i : i + mb], lengths[i : i + mb], self.device)
            for i in range(0, len(ids), mb)
        ]

    def state_dict(self) -> dict[str, Any]:
        return self.source.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.source.load_state_dict(state)


class LMData(Protocol):
    """A prepared data source: training sequences by seed and a fixed held-out set."""

    vocab_size: int  # the ids its sequences can contain
    optimal_loss: float | None  # the best achievable mean target loss, where known exactly

    def train_source(self, seed: int) -> SequenceSource: ...

    def eval_sequences(self, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
        """The first held-out sequences that hold at least ``n_targets`` targets (all of them if
        the held-out data is smaller)."""
        ...


def check_vocab(data_vocab: int, model_vocab: int, what: str) -> None:
    """Refuse data whose ids would index past the model's embedding."""
    if data_vocab > model_vocab:
        raise OptbenchError(
            f"{what} uses {data_vocab} token ids but the model's vocab_size is {model_vocab}; "
            f"set task.vocab_size to at least {data_vocab}"
        )


# --- the ``data:`` config --------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    """An order-1 Markov chain over ``states`` tokens; rows ~ Dirichlet(concentration)."""

    source: str = "synthetic"
    states: int = 64
    concentration: float = 0.1
    data_seed: int = 0  # the chain and the held-out set; independent of the run seed

    @property
    def vocab_size(self) -> int:
        return self.states + 1  # the states and a beginning-of-sequence token


@dataclass(frozen=True)
class TextSpec:
    """Documents streamed through HF ``datasets``, tokenized, truncated/padded or packed."""

    source: str  # files | c4
    tokenizer: str  # bytes | a local tokenizer.json | a hub name
    eos_token: str | None = None  # default: the first of </s>, <|endoftext|>, ... it has
    text_field: str = "text"
    pack: bool = False  # False: one document per row, truncated or padded (GaLore)
    shuffle_seed: int | None = None  # None: the run's data seed; GaLore pins 42
    shuffle_buffer: int = 1000  # HF datasets' default, which GaLore uses
    train_files: tuple[str, ...] = ()  # source=files: paths or glob patterns
    val_files: tuple[str, ...] = ()
    path: str = "allenai/c4"  # source=c4: the hub dataset and its config
    name: str = "en"

    @property
    def vocab_size(self) -> int | None:
        """Known without loading anything only for the byte tokenizer."""
        return ByteTokenizer.vocab_size if self.tokenizer == BYTES else None


DataSpec = SyntheticSpec | TextSpec

_TEXT_KEYS: dict[str, Any] = {
    "tokenizer": str,
    "eos_token": str | None,
    "text_field": str,
    "pack": bool,
    "shuffle_seed": int | None,
    "shuffle_buffer": int,
}
_KEYS: dict[str, dict[str, Any]] = {  # accepted keys and their types, by source
    "synthetic": {"states": int, "concentration": float, "data_seed": int},
    "files": {**_TEXT_KEYS, "train_files": tuple, "val_files": tuple},
    "c4": {**_TEXT_KEYS, "path": str, "name": str},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "files": {"tokenizer": "bytes"},
    "c4": {"tokenizer": "t5-base", "shuffle_seed": 42},
}


def parse_data_config(data: Mapping[str, Any] | None) -> DataSpec:
    """Check the ``data:`` mapping (cheaply: nothing is opened) and return its spec."""
    data = dict(data or {"source": "synthetic"})
    source = data.pop("source", None)
    if source not in _KEYS:
        raise OptbenchError(f"task.data.source={source!r}; accepted: {', '.join(_KEYS)}")
    types = _KEYS[source]
    unknown = sorted(set(data) - {key for keys in _KEYS.values() for key in keys})
    if unknown:
        raise OptbenchError(
            f"task.data: unknown key(s) {', '.join(unknown)}; accepted for source={source}: "
            f"{', '.join(sorted(types))}"
        )
    # Keys of the other sources are ignored, so that a command line can switch the source of a
    # config (task.data.source=files +task.data.train_files=...) without deleting keys first.
    data = {key: _checked(key, value, types[key]) for key, value in data.items() if key in types}
    if source == "synthetic":
        spec: DataSpec = SyntheticSpec(**data)
        if spec.states < 2 or not spec.concentration > 0:
            raise OptbenchError(
                f"task.data: states={spec.states} must be >= 2 and "
                f"concentration={spec.concentration} > 0"
            )
        return spec
    if source == "files" and not (data.get("train_files") and data.get("val_files")):
        raise OptbenchError(
            "task.data.source=files needs train_files and val_files (paths or glob patterns "
            "of .txt, .json, .jsonl(.gz) or .parquet files)"
        )
    spec = TextSpec(source=source, **{**_DEFAULTS[source], **data})
    if spec.shuffle_buffer < 1:
        raise OptbenchError(f"task.data.shuffle_buffer={spec.shuffle_buffer}: must be >= 1")
    return spec


def _checked(key: str, value: Any, wanted: Any) -> Any:
    """``value`` if it has type ``wanted`` (ints pass as floats; a path list, or an OmegaConf
    ListConfig, becomes a tuple)."""
    if wanted is tuple:
        if isinstance(value, str):
            return (value,)
        if isinstance(value, Sequence) and value and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise OptbenchError(f"task.data.{key} must be a path, a glob pattern or a list of them")
    if wanted is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    is_bool = isinstance(value, bool)
    if isinstance(value, wanted) and (is_bool == (wanted is bool) or value is None):
        return value
    name = getattr(wanted, "__name__", str(wanted))
    raise OptbenchError(f"task.data.{key}={value!r}: expected {name}")
