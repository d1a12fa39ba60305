"""A seeded document order over a sharded, streamed dataset, whose position can be saved exactly.

Each epoch reads the shards (files) in a permutation drawn from (seed, epoch), one at a time,
into a buffer of ``buffer_size`` documents; each next document is drawn from the buffer at
random and its slot refilled. This is the shuffle HF ``datasets`` applied in the versions GaLore
ran (``IterableDataset.shuffle(seed=42)``: shard order, then a 1000-document buffer), done here so
that the position is exact and cheap to restore: (epoch, shard, documents read from it, the
buffer's texts, the generator's state). Resuming re-reads at most the current shard's head, and
the order does not depend on the installed ``datasets`` version. HF's own
``IterableDataset.state_dict()`` drops the buffer on resume (its docstring says so), so a resumed
run would see other documents.
"""

from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from optbench.errors import OptbenchError

_SHARD_ORDER, _BUFFER = 1, 2  # seed-sequence tags: independent random streams
#: what reading a malformed file raises: undecodable text (UnicodeDecodeError), bad JSON or
#: Parquet (pyarrow's ArrowInvalid, json's JSONDecodeError: ValueErrors), a truncated or corrupt
#: gzip stream
_UNREADABLE = (ValueError, EOFError, zlib.error, gzip.BadGzipFile)


def _reason(err: BaseException) -> str:
    reason = " ".join(str(err).split())
    return f"not UTF-8 text (a binary file?): {reason}" if isinstance(err, UnicodeDecodeError) else reason


class ShuffledDocuments:
    """Texts from ``docs`` (a streamed HF dataset) in a seeded order; endless unless
    ``max_epochs`` is given, after which :meth:`next_texts` returns fewer texts (or none)."""

    def __init__(
        self,
        docs: Any,
        text_field: str,
        seed: int,
        buffer_size: int,
        max_epochs: int | None = None,
        what: str = "task.data",
    ) -> None:
        self.docs, self.text_field, self.seed, self.what = docs, text_field, seed, what
        self.buffer_size, self.max_epochs = buffer_size, max_epochs
        self.num_shards = int(getattr(docs, "num_shards", None) or docs.n_shards)
        self.epoch, self.shard, self.read, self.drawn = 0, 0, 0, 0
        self.buffer: list[str] = []
        self.rng = np.random.default_rng([seed, _BUFFER, 0])
        self._records: Any = None  # iterator over the current shard

    def next_texts(self, n: int) -> list[str]:
        texts: list[str] = []
        while len(texts) < n:
            while len(self.buffer) < self.buffer_size and (text := self._read()) is not None:
                self.buffer.append(text)
            if not self.buffer:  # this epoch is over
                if self.drawn == 0:
                    raise OptbenchError("task.data: no documents to read")
                if self.max_epochs is not None and self.epoch + 1 >= self.max_epochs:
                    break
                self.epoch, self.shard, self.read, self.drawn = self.epoch + 1, 0, 0, 0
                continue
            i = int(self.rng.integers(len(self.buffer)))
            self.buffer[i], self.buffer[-1] = self.buffer[-1], self.buffer[i]
            texts.append(self.buffer.pop())
            self.drawn += 1
        return texts

    def _read(self) -> str | None:
        """The next text of this epoch's shard sequence, or None when the epoch has no more."""
        while self.shard < self.num_shards:
            try:  # datasets streams: a file's content is first read here
                if self._records is None:
                    self._records = self._open_shard()
                record = next(self._records, None)
            except _UNREADABLE as err:
                raise OptbenchError(f"cannot read {self.what}: {_reason(err)}; accepted: UTF-8 "
                                    "text (.txt), JSON records (.json, .jsonl) or Parquet files, "
                                    "gzipped or not") from None
            if record is not None:
                self.read += 1
                return self._text(record)
            self.shard, self.read, self._records = self.shard + 1, 0, None
        return None

    def _open_shard(self) -> Any:
        order = np.random.default_rng([self.seed, _SHARD_ORDER, self.epoch])
        index = int(order.permutation(self.num_shards)[self.shard])
        records = iter(self.docs.shard(num_shards=self.num_shards, index=index))
        next(itertools.islice(records, self.read, self.read), None)  # skip what was read
        return records

    def _text(self, record: Mapping[str, Any]) -> str:
        field = self.text_field
        if field not in record:
            raise OptbenchError(f"task.data.text_field={field!r} is missing from a document")
        text = record[field]
        if not isinstance(text, str):
            raise OptbenchError(f"task.data.text_field={field!r} holds {type(text).__name__}")
        return text

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "shard": self.shard,
            "read": self.read,
            "drawn": self.drawn,
            "buffer": list(self.buffer),
            "rng": self.rng.bit_generator.state,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.epoch, self.shard = int(state["epoch"]), int(state["shard"])
        self.read, self.drawn = int(state["read"]), int(state["drawn"])
        self.buffer = list(state["buffer"])
        self.rng.bit_generator.state = dict(state["rng"])
        self._records = None
