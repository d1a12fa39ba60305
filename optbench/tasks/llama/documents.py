"""Opening a document collection as a streamed HF ``datasets.IterableDataset``.

``files`` and ``c4`` differ only here, in the ``load_dataset`` call: local files go through the
packaged ``text``/``json``/``parquet`` builders (``.json.gz`` shards of C4 included), ``c4``
streams the hub dataset. Everything downstream (shuffling, tokenizing, batching) is shared.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
from collections.abc import Iterator
from typing import Any, Literal

from optbench.errors import OptbenchError
from optbench.tasks.llama.data import TextSpec
from optbench.tasks.llama.hub import import_optional, one_line, require_hub

Split = Literal["train", "validation"]

_BUILDERS = {  # file name endings, checked in order, and the datasets builder that reads them
    ".txt": "text",  # one document per line
    ".txt.gz": "text",
    ".jsonl": "json",
    ".jsonl.gz": "json",
    ".json": "json",
    ".json.gz": "json",
    ".parquet": "parquet",
}


def expand_files(key: str, patterns: tuple[str, ...]) -> list[str]:
    """The files that ``patterns`` name, sorted per pattern; OptbenchError if one matches none."""
    files: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise OptbenchError(f"task.data.{key}: no file matches {pattern!r}")
        files.extend(matches)
    return files


def _builder(key: str, files: list[str]) -> str:
    kinds = set()
    for f in files:
        kind = next((b for end, b in _BUILDERS.items() if f.endswith(end)), None)
        if kind is None:
            raise OptbenchError(
                f"task.data.{key}: cannot read {f}; accepted: {', '.join(_BUILDERS)}"
            )
        kinds.add(kind)
    if len(kinds) > 1:
        raise OptbenchError(f"task.data.{key} mixes file kinds ({', '.join(sorted(kinds))})")
    return kinds.pop()


@contextlib.contextmanager
def _no_download_count(config: Any) -> Iterator[None]:
    """load_dataset pings the hub to count downloads even for local files; without network that
    stalls for seconds (a DNS timeout) unless HF_HUB_OFFLINE was set before datasets' import."""
    before = config.HF_UPDATE_DOWNLOAD_COUNTS
    config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        yield
    finally:
        config.HF_UPDATE_DOWNLOAD_COUNTS = before


def describe(spec: TextSpec, split: Split) -> str:
    """The documents of ``split`` as the user named them, for messages."""
    if spec.source == "c4":
        return f"dataset {spec.path!r} ({spec.name}, {split})"
    key = "train_files" if split == "train" else "val_files"
    return f"task.data.{key}={','.join(spec.train_files if split == 'train' else spec.val_files)}"


def open_documents(spec: TextSpec, split: Split) -> Any:
    """The ``split`` documents of ``spec``, streamed, with only the text column."""
    datasets = import_optional("datasets", f"task.data.source={spec.source}")
    quiet = contextlib.nullcontext()
    if spec.source == "c4":
        what = f"dataset {spec.path!r} ({spec.name}, {split})"
        require_hub(
            what,
            "use local files instead: task.data.source=files +task.data.train_files=GLOB "
            "+task.data.val_files=GLOB (e.g. c4-train.*.json.gz shards) with "
            "task.data.tokenizer=bytes or a local tokenizer.json, or task.data.source=synthetic",
        )
        call = {"path": spec.path, "name": spec.name, "split": split, "streaming": True}
    else:
        key = "train_files" if split == "train" else "val_files"
        files = expand_files(key, spec.train_files if split == "train" else spec.val_files)
        what = f"task.data.{key}"
        call = {
            "path": _builder(key, files),
            "data_files": {split: files},
            "split": split,
            "streaming": True,
        }
        quiet = _no_download_count(datasets.config)
        # the packaged builders log a malformed file before raising, which the reading turns
        # into one line (optbench.tasks.llama.shuffle): a second, raw line would be noise
        logging.getLogger("datasets.packaged_modules").setLevel(logging.CRITICAL)
    try:
        with quiet:
            docs = datasets.load_dataset(**call)
    except Exception as err:  # noqa: BLE001 (missing files, bad records, hub errors alike)
        raise OptbenchError(f"cannot open {what}: {one_line(err)}") from None
    columns = docs.column_names
    if columns is not None and spec.text_field not in columns:
        raise OptbenchError(
            f"task.data.text_field={spec.text_field!r} is not a column of {what}; "
            f"its columns: {', '.join(columns)}"
        )
    return docs.select_columns([spec.text_field])
