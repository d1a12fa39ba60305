"""The LLaMA task's text pipeline (sources ``files`` and ``c4``), offline, on C4-shaped shards."""

from __future__ import annotations

import gzip
import json
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import run_config, summary

from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.runner.config import compose
from optbench.tasks.llama.data import IGNORE_INDEX
from optbench.tasks.llama.documents import open_documents
from optbench.tasks.llama.shuffle import ShuffledDocuments
from optbench.tasks.llama.task import LlamaTask

datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")

SEQ_LEN = 32
SMALL = {"hidden": 32, "intermediate": 48, "heads": 1, "layers": 1, "vocab_size": 300}
WORDS = ["the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with"]
BYTES_PAD, BYTES_EOS = 256, 257


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _text(rng: random.Random, i: int, tag: str) -> str:
    if i == 7:
        return ""  # an empty document: one eos, no target
    return f"{tag}{i} " + " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 25)))


def _write_shard(path: Path, texts: list[str]) -> None:
    with gzip.open(path, "wt") as f:
        for i, text in enumerate(texts):
            record = {"text": text, "timestamp": "2019-04-25 12:57:54", "url": f"https://x/{i}"}
            f.write(json.dumps(record) + "\n")


@pytest.fixture(scope="module")
def c4(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """C4-shaped ``.json.gz`` shards: 3 train shards of 30 documents, 1 validation shard of 30."""
    root = tmp_path_factory.mktemp("c4")
    rng = random.Random(0)
    texts: dict[str, list[str]] = {"train": [], "validation": []}
    for split, shards in (("train", 3), ("validation", 1)):
        for shard in range(shards):
            chunk = [_text(rng, i, f"{split[0]}{shard}-") for i in range(30)]
            _write_shard(root / f"c4-{split}.{shard:05d}-of-{shards:05d}.json.gz", chunk)
            texts[split] += chunk
    return {
        "train_files": str(root / "c4-train.*.json.gz"),
        "val_files": str(root / "c4-validation.*.json.gz"),
        "texts": texts,
    }


def _train_tokenizer(path: Path, kind: str, texts: list[str]) -> str:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    special = ["<pad>", "</s>", "<unk>"]
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        trainer: Any = trainers.BpeTrainer(vocab_size=120, special_tokens=special)
    else:
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        trainer = trainers.WordLevelTrainer(special_tokens=special)
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(texts, trainer)
    tok.save(str(path))
    return str(path)


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory: pytest.TempPathFactory, c4: dict[str, Any]) -> dict[str, str]:
    root = tmp_path_factory.mktemp("tok")
    texts = c4["texts"]["train"] + c4["texts"]["validation"]
    return {kind: _train_tokenizer(root / f"{kind}.json", kind, texts) for kind in ("bpe", "word")}


def make_task(data: dict[str, Any], **kw: Any) -> LlamaTask:
    args = {**SMALL, "seq_len": SEQ_LEN, "sequences_per_step": 8, "micro_batch": 4}
    return LlamaTask(data=data, **{**args, "eval_tokens": 200, **kw})


def files(c4: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"source": "files", "train_files": c4["train_files"], "val_files": c4["val_files"], **kw}


def prepared(data: dict[str, Any], **kw: Any) -> LlamaTask:
    task = make_task(data, **kw)
    task.prepare(torch.device("cpu"), torch.float32)
    return task


def rows(step: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    ids = torch.cat([mb.input_ids for mb in step]).numpy()
    labels = torch.cat([mb.labels for mb in step]).numpy()
    return ids, labels


# --- shapes of sequences ---------------------------------------------------------------------


def test_documents_are_truncated_or_padded_like_galore(c4: dict[str, Any]) -> None:
    task = prepared(files(c4))
    ids, labels = rows(next(task.train_stream(seed=0)))
    docs = [t.encode() for t in c4["texts"]["train"]]
    for row, row_labels in zip(ids, labels, strict=True):
        length = int((row_labels != IGNORE_INDEX).sum())
        content = bytes(row[: length - 1].tolist())
        doc = next(d for d in docs if d[: SEQ_LEN - 1] == content)
        assert length == min(len(doc), SEQ_LEN - 1) + 1
        assert row[length - 1] == BYTES_EOS
        assert (row[length:] == BYTES_PAD).all()
        assert (row_labels[:length] == row[:length]).all()


def test_packing_concatenates_documents_with_eos(c4: dict[str, Any]) -> None:
    task = prepared(files(c4, pack=True, shuffle_seed=3))
    stream = task.train_stream(seed=0)
    ids = np.concatenate([rows(next(stream))[0].ravel() for _ in range(3)])
    order = ShuffledDocuments(open_documents(task.data_spec, "train"), "text", 3, 1000)
    expected = [b for text in order.next_texts(90) for b in [*text.encode(), BYTES_EOS]]
    assert ids.tolist() == expected[: len(ids)]
    _, labels = rows(next(stream))
    assert (labels != IGNORE_INDEX).all()


@pytest.mark.parametrize("kind", ["bpe", "word"])
def test_trained_tokenizer_json(
    c4: dict[str, Any], tokenizer_files: dict[str, str], kind: str
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(tokenizer_files[kind])
    pad, eos = tok.token_to_id("<pad>"), tok.token_to_id("</s>")
    task = prepared(files(c4, tokenizer=tokenizer_files[kind]))
    assert task.data.vocab_size == tok.get_vocab_size()
    ids, labels = rows(next(task.train_stream(seed=0)))
    encoded = {
        tuple(tok.encode(t, add_special_tokens=False).ids[: SEQ_LEN - 1])
        for t in c4["texts"]["train"]
    }
    for row, row_labels in zip(ids, labels, strict=True):
        length = int((row_labels != IGNORE_INDEX).sum())
        assert tuple(row[: length - 1].tolist()) in encoded
        assert row[length - 1] == eos and (row[length:] == pad).all()


def test_txt_and_parquet_files(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.txt").write_text("first line\nsecond line\n")
    pq.write_table(pa.table({"body": ["parquet doc", "another"]}), tmp_path / "a.parquet")
    for name, extra in (("a.txt", {}), ("a.parquet", {"text_field": "body"})):
        path = str(tmp_path / name)
        data = {"source": "files", "train_files": path, "val_files": path, **extra}
        task = prepared(data, sequences_per_step=2, micro_batch=2)
        ids, labels = rows(next(task.train_stream(0)))
        lengths = (labels != IGNORE_INDEX).sum(1)
        texts = {bytes(row[: n - 1].tolist()) for row, n in zip(ids, lengths, strict=True)}
        assert texts <= {b"first line", b"second line", b"parquet doc", b"another"}


# --- the work a run counts ------------------------------------------------------------------

LINES = ["a", "short line", "a line well past sixteen bytes long", "ünïcode", "x y",
         "another document that gets truncated", "mid length doc", "z"]


def test_run_counts_the_targets_of_unpacked_lines_as_tokens(tmp_path: Path) -> None:
    """Through the real run, on one document per line padded to 16 slots: ``tokens`` and
    ``perf/tokens_per_second`` count the next-token targets, never the padding."""
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(LINES) + "\n")
    cfg = compose(["task=llama_tiny", "task.hidden=32", "task.intermediate=64", "task.heads=2",
                   "task.layers=1", "task.seq_len=16", "task.sequences_per_step=4",
                   "task.micro_batch=2", "task.eval_tokens=20", "data=files",
                   f"task.data.train_files={path}", f"task.data.val_files={path}",
                   "train.steps=4", "train.log_every=2", "train.eval_every=4", "logger=none"])
    run_dir = tmp_path / "run"
    run_config(cfg, run_dir)
    # Each line is its UTF-8 bytes, cut to seq_len - 1 = 15, then eos: one target per kept
    # byte. Two steps of 4 rows are one epoch, a permutation of the 8 lines, whatever the order.
    per_epoch = sum(min(len(line.encode()), 15) for line in LINES)
    assert per_epoch == 68 != 2 * 4 * 16  # the padded slots would count 128
    logged = {r["step"]: r for r in read_metrics(run_dir / "metrics.jsonl") if "train/loss" in r}
    assert logged[2]["tokens"] == per_epoch and logged[4]["tokens"] == 2 * per_epoch
    assert summary(run_dir)["work"] == 2 * per_epoch
    interval = logged[4]["perf/tokens_per_second"] * logged[4]["perf/step_seconds"] * 2
    assert interval == pytest.approx(per_epoch, rel=1e-9)  # the tokens of steps 3 and 4


# --- the c4 source is the files pipeline over the hub dataset --------------------------------


@pytest.mark.parametrize("tokenizer", ["bytes", "bpe"])
def test_c4_source_runs_the_files_pipeline(
    c4: dict[str, Any],
    tokenizer_files: dict[str, str],
    tokenizer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``allenai/c4`` is redirected to the local shards; the rest of the c4 path runs unchanged
    and gives exactly the batches of ``files`` with the same shuffle seed."""
    from optbench.tasks.llama import documents

    real_load = datasets.load_dataset
    shards = {"train": c4["train_files"], "validation": c4["val_files"]}
    calls = []

    def hub_c4(path: str, name: str | None = None, **kw: Any) -> Any:
        calls.append((path, name, kw["split"], kw["streaming"]))
        assert (path, name) == ("allenai/c4", "en")
        return real_load("json", data_files={kw["split"]: shards[kw["split"]]}, **kw)

    monkeypatch.setattr(documents, "require_hub", lambda what, instead: None)
    monkeypatch.setattr(datasets, "load_dataset", hub_c4)
    tok = tokenizer if tokenizer == "bytes" else tokenizer_files[tokenizer]
    c4_task = prepared({"source": "c4", "tokenizer": tok})
    assert calls == [("allenai/c4", "en", "train", True), ("allenai/c4", "en", "validation", True)]
    monkeypatch.setattr(datasets, "load_dataset", real_load)
    files_task = prepared(files(c4, tokenizer=tok, shuffle_seed=42))
    for a, b in zip(next(c4_task.train_stream(0)), next(files_task.train_stream(0)), strict=True):
        assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.labels, b.labels)
    assert torch.equal(c4_task.eval_set.input_ids, files_task.eval_set.input_ids)
    # the c4 default pins the shuffle seed (42), so the run seed does not change the order
    assert torch.equal(first_ids(c4_task, 0), first_ids(c4_task, 1))


# --- order, resume, held-out set -------------------------------------------------------------


def first_ids(task: LlamaTask, seed: int) -> torch.Tensor:
    return next(task.train_stream(seed))[0].input_ids


def test_run_seed_sets_the_order_unless_the_shuffle_seed_is_pinned(c4: dict[str, Any]) -> None:
    free = prepared(files(c4))
    assert torch.equal(first_ids(free, 0), first_ids(free, 0))
    assert not torch.equal(first_ids(free, 0), first_ids(free, 1))
    pinned = prepared(files(c4, shuffle_seed=7))
    assert torch.equal(first_ids(pinned, 0), first_ids(pinned, 1))


@pytest.mark.parametrize("pack", [False, True])
def test_resume_gives_the_identical_continuation_across_epochs(
    c4: dict[str, Any], pack: bool
) -> None:
    task = prepared(files(c4, pack=pack, shuffle_buffer=16))
    stream = task.train_stream(seed=1)
    for _ in range(3):
        next(stream)
    state = json.loads(json.dumps(stream.state_dict()))  # plain data, as a checkpoint holds
    assert state["documents"]["read"] > 0 and state["documents"]["buffer"]  # mid-shard, mid-buffer
    expected = []
    while stream.state_dict()["documents"]["epoch"] < 1 or len(expected) < 15:
        expected.append(rows(next(stream)))
        assert len(expected) < 200
    resumed = task.train_stream(seed=1)
    resumed.load_state_dict(state)
    for want in expected:
        got = rows(next(resumed))
        assert (got[0] == want[0]).all() and (got[1] == want[1]).all()


def test_every_epoch_is_a_fresh_permutation_of_all_documents(c4: dict[str, Any]) -> None:
    task = make_task(files(c4))
    docs = open_documents(task.data_spec, "train")
    order = ShuffledDocuments(docs, "text", seed=0, buffer_size=16)
    assert order.num_shards == 3
    epochs = [order.next_texts(90) for _ in range(3)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(c4["texts"]["train"])
    assert len({tuple(e) for e in epochs}) == 3
    assert epochs[0] != ShuffledDocuments(docs, "text", seed=1, buffer_size=16).next_texts(90)


def test_held_out_set_is_fixed_and_just_large_enough(c4: dict[str, Any]) -> None:
    a, b = prepared(files(c4)), prepared(files(c4), micro_batch=2)
    assert torch.equal(a.eval_set.input_ids, b.eval_set.input_ids)
    targets = (a.eval_set.labels[:, 1:] != IGNORE_INDEX).sum(1)
    assert a.eval_set.n_targets == int(targets.sum()) >= 200
    assert int(targets[:-1].sum()) < 200
    whole = prepared(files(c4), eval_tokens=10**9)
    assert whole.eval_set.input_ids.shape[0] == len(c4["texts"]["validation"])


# --- refusals --------------------------------------------------------------------------------


def test_vocabulary_larger_than_the_embedding_is_refused(
    c4: dict[str, Any], tokenizer_files: dict[str, str]
) -> None:
    from tokenizers import Tokenizer

    with pytest.raises(OptbenchError, match="vocab_size"):
        make_task(files(c4), vocab_size=100)  # bytes: known before anything is loaded
    n = Tokenizer.from_file(tokenizer_files["bpe"]).get_vocab_size()
    task = make_task(
        {**files(c4, tokenizer=tokenizer_files["bpe"]), "train_files": "/nonexistent/*.json"},
        vocab_size=n - 1,
    )
    with pytest.raises(OptbenchError, match=f"uses {n} token ids .* vocab_size is {n - 1}"):
        task.prepare(torch.device("cpu"), torch.float32)  # refused before the files are opened


def test_added_token_beyond_the_vocabulary_is_refused(tmp_path: Path, c4: dict[str, Any]) -> None:
    from tokenizers import Tokenizer

    path = _train_tokenizer(tmp_path / "t.json", "word", c4["texts"]["train"])
    tok = Tokenizer.from_file(path)
    tok.add_tokens(["<extra_id_0>"])
    tok.save(path)
    _write_shard(tmp_path / "x.json.gz", ["the <extra_id_0> of"] * 8)
    data = {"source": "files", "train_files": str(tmp_path / "x.json.gz"), "tokenizer": path}
    task = make_task({**data, "val_files": c4["val_files"]})
    task.prepare(torch.device("cpu"), torch.float32)
    with pytest.raises(OptbenchError, match="token id"):
        next(task.train_stream(0))


def test_bad_files_fail_at_prepare_with_one_line(tmp_path: Path, c4: dict[str, Any]) -> None:
    (tmp_path / "x.csv").write_text("text\nhello\n")
    cases = {
        "no file matches": {"train_files": str(tmp_path / "missing-*.json.gz")},
        "accepted: .txt": {"train_files": str(tmp_path / "x.csv")},
        "text_field='body'": {"text_field": "body"},
    }
    for message, change in cases.items():
        task = make_task({**files(c4), **change})  # cheap: nothing is opened yet
        with pytest.raises(OptbenchError, match=message) as err:
            task.prepare(torch.device("cpu"), torch.float32)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("switch", ["HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"])
def test_hub_fetches_fail_fast_offline(
    c4: dict[str, Any], monkeypatch: pytest.MonkeyPatch, switch: str
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv(switch, "1")
    cases = {
        "task.data.source=files": {"source": "c4", "tokenizer": "bytes"},
        "tokenizer to a local tokenizer.json, or to 'bytes'": files(c4, tokenizer="t5-base"),
    }
    for hint, data in cases.items():
        task = make_task(data)
        start = time.monotonic()
        with pytest.raises(OptbenchError, match=switch) as err:
            task.prepare(torch.device("cpu"), torch.float32)
        assert time.monotonic() - start < 5
        assert hint in str(err.value) and "\n" not in str(err.value)


def test_unreachable_hub_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    task = make_task({"source": "c4", "tokenizer": "bytes"})
    start = time.monotonic()
    with pytest.raises(OptbenchError, match=r"127\.0\.0\.1:9 is unreachable"):
        task.prepare(torch.device("cpu"), torch.float32)
    assert time.monotonic() - start < 5
