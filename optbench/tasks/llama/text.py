"""Fixed-length token sequences from streamed text documents (sources ``files`` and ``c4``).

Each document becomes its content ids followed by the end-of-sequence id. Without packing (the
GaLore recipe) each document fills one row: truncated to ``seq_len`` (content cut to
``seq_len - 1``, eos kept) or padded. With ``pack`` the documents are concatenated and cut into
full rows, so there is no padding.

The document order and its exact, cheap resume are :mod:`optbench.tasks.llama.shuffle`'s; the
position adds the packed tokens not yet in a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from optbench.errors import OptbenchError
from optbench.tasks.llama.data import TextSpec, check_vocab
from optbench.tasks.llama.documents import Split, describe, open_documents
from optbench.tasks.llama.shuffle import ShuffledDocuments
from optbench.tasks.llama.tokenizer import TextTokenizer, load_tokenizer

EVAL_SHUFFLE_SEED = 42  # the held-out documents, shuffled as GaLore does, whatever the run seed
PACK_DOCS = 64  # documents tokenized at a time when packing
EVAL_CHUNK = 256  # sequences built at a time for the held-out set


class TextSource:
    """``sequences`` rows at a time from a :class:`ShuffledDocuments`; fewer (or none) once a
    source with ``max_epochs`` runs out."""

    def __init__(
        self,
        docs: ShuffledDocuments,
        tokenizer: TextTokenizer,
        seq_len: int,
        sequences: int,
        pack: bool,
    ) -> None:
        self.docs, self.tokenizer = docs, tokenizer
        self.seq_len, self.sequences, self.pack = seq_len, sequences, pack
        self.pending = np.empty(0, dtype=np.int64)  # packed tokens not yet in a row

    def _encode(self, texts: list[str]) -> list[np.ndarray]:
        encoded = self.tokenizer.encode(texts)
        top = max((int(ids.max()) for ids in encoded if len(ids)), default=-1)
        if top >= self.tokenizer.vocab_size:
            raise OptbenchError(
                f"a document has token id {top}, beyond the tokenizer's {self.tokenizer.vocab_size}"
                " (an added token in the text?); use a tokenizer without such tokens"
            )
        return encoded

    # --- sequences ---

    def next_sequences(self) -> tuple[np.ndarray, np.ndarray]:
        return self._packed() if self.pack else self._truncated()

    def _truncated(self) -> tuple[np.ndarray, np.ndarray]:
        encoded = self._encode(self.docs.next_texts(self.sequences))
        ids = np.full((len(encoded), self.seq_len), self.tokenizer.pad_id, dtype=np.int64)
        lengths = np.empty(len(encoded), dtype=np.int64)
        for row, content in enumerate(encoded):
            content = content[: self.seq_len - 1]
            ids[row, : len(content)] = content
            ids[row, len(content)] = self.tokenizer.eos_id
            lengths[row] = len(content) + 1
        return ids, lengths

    def _packed(self) -> tuple[np.ndarray, np.ndarray]:
        need = self.sequences * self.seq_len
        eos = np.array([self.tokenizer.eos_id], dtype=np.int64)
        while len(self.pending) < need:
            texts = self.docs.next_texts(PACK_DOCS)
            if not texts:
                break
            parts = [self.pending]
            for content in self._encode(texts):
                parts += [content, eos]
            self.pending = np.concatenate(parts)
        rows = min(self.sequences, len(self.pending) // self.seq_len)
        ids = self.pending[: rows * self.seq_len].reshape(rows, self.seq_len)
        self.pending = self.pending[rows * self.seq_len :]
        return ids, np.full(rows, self.seq_len, dtype=np.int64)

    # --- position ---

    def state_dict(self) -> dict[str, Any]:
        return {"documents": self.docs.state_dict(), "pending": self.pending.tolist()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.docs.load_state_dict(state["documents"])
        self.pending = np.asarray(state["pending"], dtype=np.int64)


class TextData:
    """The :class:`~optbench.tasks.llama.data.LMData` of a document collection."""

    optimal_loss: float | None = None

    def __init__(
        self, spec: TextSpec, seq_len: int, sequences_per_step: int, model_vocab: int
    ) -> None:
        self.spec, self.seq_len, self.sequences_per_step = spec, seq_len, sequences_per_step
        self.tokenizer = load_tokenizer(spec.tokenizer, spec.eos_token)
        self.vocab_size = self.tokenizer.vocab_size
        check_vocab(self.vocab_size, model_vocab, f"tokenizer {spec.tokenizer!r}")
        self.train_docs = open_documents(spec, "train")
        self.val_docs = open_documents(spec, "validation")

    def _source(self, split: Split, seed: int, sequences: int, max_epochs: int | None) -> TextSource:
        spec = self.spec
        docs = self.train_docs if split == "train" else self.val_docs
        order = ShuffledDocuments(docs, spec.text_field, seed, spec.shuffle_buffer, max_epochs,
                                  what=describe(spec, split))
        return TextSource(order, self.tokenizer, self.seq_len, sequences, spec.pack)

    def train_source(self, seed: int) -> TextSource:
        shuffle_seed = seed if self.spec.shuffle_seed is None else self.spec.shuffle_seed
        return self._source("train", shuffle_seed, self.sequences_per_step, None)

    def eval_sequences(self, n_targets: int) -> tuple[np.ndarray, np.ndarray]:
        source = self._source("validation", EVAL_SHUFFLE_SEED, EVAL_CHUNK, max_epochs=1)
        chunks: list[tuple[np.ndarray, np.ndarray]] = []
        total = 0
        while total < n_targets:
            ids, lengths = source.next_sequences()
            if not len(ids):
                break
            chunks.append((ids, lengths))
            total += int((lengths - 1).sum())
        if total == 0:
            raise OptbenchError(f"task.data ({self.spec.source}): the held-out split has no text")
        ids = np.concatenate([c[0] for c in chunks])
        lengths = np.concatenate([c[1] for c in chunks])
        keep = int(np.searchsorted(np.cumsum(lengths - 1), n_targets)) + 1
        return ids[:keep], lengths[:keep]
