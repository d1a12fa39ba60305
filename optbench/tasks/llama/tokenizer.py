"""Tokenizers for text data: a built-in byte tokenizer, or any ``tokenizers`` tokenizer.

Every tokenizer here returns a document's *content* ids (no special tokens); the data pipeline
appends the end-of-sequence id itself, so documents are shaped the same whatever the tokenizer.
For t5-base (the GaLore benchmark's) this reproduces what its post-processor does (content, then
``</s>``). ``vocab_size`` counts the ids a tokenizer can emit: t5-base's 100 sentinel tokens
(ids 32000-32099) are added tokens that plain text never produces, so it needs 32000.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from optbench.errors import OptbenchError
from optbench.tasks.llama.hub import import_optional, one_line, require_hub

BYTES = "bytes"
EOS_CANDIDATES = ("</s>", "<|endoftext|>", "<|end_of_text|>", "<eos>", "[SEP]")
PAD_CANDIDATES = ("<pad>", "[PAD]", "<|padding|>")


class TextTokenizer(Protocol):
    vocab_size: int  # ids it can emit: content, eos and pad
    eos_id: int
    pad_id: int  # fills the inputs after a short document (never a target)

    def encode(self, texts: list[str]) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class ByteTokenizer:
    """UTF-8 bytes are ids 0-255; 256 is pad and 257 end-of-sequence. Needs no download."""

    vocab_size: int = 258
    eos_id: int = 257
    pad_id: int = 256

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8).astype(np.int64) for t in texts]


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` with its end-of-sequence (and, if it has one, pad) id."""

    def __init__(self, tokenizer: Any, source: str, eos_token: str | None) -> None:
        tokenizer.no_truncation()
        tokenizer.no_padding()
        self.tokenizer = tokenizer
        eos = _find_id(tokenizer, (eos_token,) if eos_token else EOS_CANDIDATES)
        if eos is None:
            wanted = repr(eos_token) if eos_token else f"any of {', '.join(EOS_CANDIDATES)}"
            raise OptbenchError(
                f"tokenizer {source} has no end-of-sequence token {wanted}; "
                "set task.data.eos_token to one of its tokens"
            )
        pad = _find_id(tokenizer, PAD_CANDIDATES)
        self.eos_id = eos
        self.pad_id = eos if pad is None else pad
        base = tokenizer.get_vocab_size(with_added_tokens=False)
        self.vocab_size = max(base, self.eos_id + 1, self.pad_id + 1)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        return [np.asarray(e.ids, dtype=np.int64) for e in encodings]


def _find_id(tokenizer: Any, tokens: tuple[str, ...]) -> int | None:
    for token in tokens:
        token_id = tokenizer.token_to_id(token)
        if token_id is not None:
            return token_id
    return None


def load_tokenizer(spec: str, eos_token: str | None = None) -> TextTokenizer:
    """``bytes``, a local ``tokenizer.json`` (or a folder holding one), or a hub name."""
    if spec == BYTES:
        return ByteTokenizer()
    Tokenizer = import_optional("tokenizers", f"task.data.tokenizer={spec}").Tokenizer

    path = os.path.expanduser(spec)
    path = os.path.join(path, "tokenizer.json") if os.path.isdir(path) else path
    if os.path.isfile(path):
        try:
            tokenizer = Tokenizer.from_file(path)
        except Exception as err:  # noqa: BLE001 (tokenizers raises plain Exception on bad files)
            raise OptbenchError(
                f"task.data.tokenizer={path} is not a tokenizer.json: {one_line(err)}"
            ) from None
        return HFTokenizer(tokenizer, path, eos_token)
    if spec.endswith(".json") or spec.startswith(("/", ".", "~")):
        raise OptbenchError(f"task.data.tokenizer={spec}: no such file")
    return HFTokenizer(_from_hub(spec), spec, eos_token)


def _from_hub(name: str) -> Any:
    from huggingface_hub import hf_hub_download  # installed with tokenizers
    from tokenizers import Tokenizer

    try:  # a cached copy needs no network
        cached = hf_hub_download(name, "tokenizer.json", local_files_only=True)
    except (OSError, ValueError):  # not cached (or not a valid repo id)
        cached = None
    if cached is not None:
        return Tokenizer.from_file(cached)
    instead = (
        "set task.data.tokenizer to a local tokenizer.json, or to 'bytes' for the built-in "
        "byte tokenizer"
    )
    require_hub(f"tokenizer {name!r}", instead)
    try:
        return Tokenizer.from_pretrained(name)
    except Exception as err:  # noqa: BLE001 (HTTP, hub and tokenizer errors alike)
        raise OptbenchError(
            f"cannot fetch tokenizer {name!r} from the hub ({one_line(err)}); {instead}"
        ) from None
