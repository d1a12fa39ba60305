"""LlamaTask: constructor checks, the loss and its weights, eval/ppl by hand, probes, training."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from optbench.errors import OptbenchError
from optbench.tasks.llama.data import IGNORE_INDEX, token_batch
from optbench.tasks.llama.task import LlamaTask

SMALL: dict[str, Any] = {
    "hidden": 32,
    "intermediate": 48,
    "heads": 1,
    "layers": 1,
    "vocab_size": 300,
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"size": "llama2m"}, "task.size='llama2m'; accepted: llama60m"),
        ({"hidden": 64}, "missing intermediate, heads, layers"),
        ({**SMALL, "sequences_per_step": 8, "micro_batch": 3}, "must divide"),
        ({**SMALL, "hidden": 64, "heads": 3}, "heads of an even size"),
        ({**SMALL, "hidden": 30, "heads": 2}, "heads of an even size"),
        ({**SMALL, "seq_len": 64, "max_seq_len": 32}, "seq_len=64"),
        ({**SMALL, "vocab_size": 0}, "task.vocab_size=0: expected a positive integer"),
        ({**SMALL, "eval_tokens": True}, "task.eval_tokens=True"),
        ({**SMALL, "data": {"source": "s3"}}, "accepted: synthetic, files, c4"),
        ({**SMALL, "data": {"source": "synthetic", "order": 2}}, "unknown key"),
        ({**SMALL, "data": {"source": "synthetic", "states": "64"}}, "states='64': expected int"),
        ({**SMALL, "data": {"source": "synthetic", "concentration": 0}}, "concentration=0.0"),
        ({**SMALL, "data": {"source": "files", "train_files": "a.txt"}}, "needs train_files"),
        ({**SMALL, "data": {"source": "c4", "pack": "yes"}}, "pack='yes': expected bool"),
        ({**SMALL, "data": {"source": "synthetic", "states": 300}}, "set task.vocab_size"),
    ],
)
def test_bad_arguments_are_refused_in_one_line(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OptbenchError, match=message.replace("(", r"\(")) as err:
        LlamaTask(**kwargs)
    assert "\n" not in str(err.value)


def test_keys_of_other_sources_are_ignored() -> None:
    data = {"source": "synthetic", "states": 8, "train_files": "x/*.txt", "pack": True}
    assert LlamaTask(**SMALL, data=data).data_spec.states == 8


def test_size_with_overrides_and_omegaconf_data() -> None:
    omegaconf = pytest.importorskip("omegaconf")
    data = omegaconf.OmegaConf.create(
        {"source": "files", "train_files": ["a/*.json.gz"], "val_files": "b.json", "pack": True}
    )
    task = LlamaTask(size="llama60m", layers=2, data=data)  # nothing is opened yet
    assert (task.config.hidden, task.config.layers, task.config.vocab_size) == (512, 2, 32000)
    assert task.data_spec.train_files == ("a/*.json.gz",) and task.data_spec.pack


def test_importing_the_task_loads_neither_datasets_nor_tokenizers() -> None:
    code = (
        "import sys, optbench.tasks.llama.task as t; t.LlamaTask(size='llama7b', data="
        "{'source': 'c4'}); assert not {'datasets', 'tokenizers'} & set(sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_data_is_needed_before_use() -> None:
    with pytest.raises(RuntimeError, match="prepare"):
        LlamaTask(**SMALL).evaluate(torch.nn.Identity())


# --- loss, weights, evaluation -----------------------------------------------------------------


def _model(task: LlamaTask) -> torch.nn.Module:
    torch.manual_seed(0)
    return task.build_model()


def test_padding_is_excluded_from_the_loss() -> None:
    task = LlamaTask(**SMALL, seq_len=8)
    model = _model(task)
    ids = np.random.default_rng(0).integers(0, 256, (3, 8))
    lengths = np.array([8, 5, 1])
    batch = token_batch(ids, lengths, torch.device("cpu"))
    # the work (tokens) is the targets too, not the 24 slots
    assert task.loss_weight(batch) == 7 + 4 + 0 == task.work(batch)
    logp = torch.log_softmax(model(batch.input_ids).double(), -1)
    by_hand = -sum(logp[r, t - 1, ids[r, t]] for r in range(3) for t in range(1, lengths[r]))
    assert task.loss(model, batch).item() == pytest.approx(by_hand.item() / 11, rel=1e-6)
    ids[1, 5:], ids[2, 1:] = 7, 9  # other ids in the padding change nothing
    again = token_batch(ids, lengths, torch.device("cpu"))
    assert task.loss(model, again).item() == task.loss(model, batch).item()


@pytest.fixture
def padded_docs(tmp_path: Path) -> dict[str, Any]:
    pytest.importorskip("datasets")
    rng = np.random.default_rng(0)
    for split, n in (("train", 40), ("val", 25)):
        with open(tmp_path / f"{split}.jsonl", "w") as f:
            for i in range(n):
                text = "".join(rng.choice(list("abcdefgh ")) for _ in range(rng.integers(0, 40)))
                f.write(json.dumps({"text": f"{split}{i}:{text}"}) + "\n")
    return {
        "source": "files",
        "train_files": str(tmp_path / "train.jsonl"),
        "val_files": str(tmp_path / "val.jsonl"),
    }


def test_eval_ppl_is_exp_of_the_token_weighted_mean_loss(padded_docs: dict[str, Any]) -> None:
    task = LlamaTask(**SMALL, seq_len=24, sequences_per_step=4, data=padded_docs, eval_tokens=300)
    task.prepare(torch.device("cpu"), torch.float32)
    model = _model(task).eval()
    metrics = task.evaluate(model)
    ids = task.eval_set.input_ids
    assert (ids == 256).any(), "the held-out set should contain padding"
    total, count = 0.0, 0
    for row in ids:  # by hand: a row ends at its first pad (byte tokenizer: pad id 256)
        length = int((row == 256).nonzero()[0]) if (row == 256).any() else len(row)
        logp = torch.log_softmax(model(row[None]).double()[0], -1)
        total -= sum(logp[t - 1, row[t]].item() for t in range(1, length))
        count += length - 1
    assert count == task.eval_set.n_targets >= 300
    assert metrics["eval/loss"] == pytest.approx(total / count, rel=1e-6)
    assert metrics["eval/ppl"] == pytest.approx(math.exp(total / count), rel=1e-6)
    assert "eval/optimal_loss" not in metrics


def test_micro_batches_weight_to_the_full_batch_loss_and_gradient(
    padded_docs: dict[str, Any],
) -> None:
    results = []
    for micro in (8, 2):
        task = LlamaTask(
            **SMALL,
            seq_len=24,
            sequences_per_step=8,
            micro_batch=micro,
            data=padded_docs,
            eval_tokens=10,
        )
        task.prepare(torch.device("cpu"), torch.float32)
        model = _model(task)
        step = next(task.train_stream(seed=0))
        assert len(step) == 8 // micro
        weights = [task.loss_weight(mb) for mb in step]
        loss = sum(
            task.loss(model, mb) * w / sum(weights) for mb, w in zip(step, weights, strict=True)
        )
        loss.backward()
        results.append((loss.item(), model.embed.weight.grad.clone()))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)


def test_probe_batches_are_fixed_by_seed_and_chunked() -> None:
    task = LlamaTask(
        **SMALL, seq_len=16, micro_batch=4, sequences_per_step=8, probe_sequences=6, eval_tokens=600
    )
    task.prepare(torch.device("cpu"), torch.float32)
    a, b, c = task.probe_batches(1), task.probe_batches(1), task.probe_batches(2)
    assert [len(mb.input_ids) for mb in a] == [4, 2]
    assert all(torch.equal(x.input_ids, y.input_ids) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].input_ids, c[0].input_ids)
    assert all(mb.n_targets == (mb.labels[:, 1:] != IGNORE_INDEX).sum() for mb in a)


# --- shipped configs and training on llama_tiny --------------------------------------------

CONFIGS = sorted((Path(__file__).parents[1] / "configs" / "task").glob("llama*.yaml"))


def _config(path: Path) -> dict:
    """The task's constructor arguments as Hydra composes them (size presets nest them under task)."""
    from omegaconf import OmegaConf

    from optbench.runner.config import compose

    cfg = OmegaConf.to_container(compose([f"task={path.stem}"]).task, resolve=True)
    assert isinstance(cfg, dict)
    assert cfg.pop("_target_") == "optbench.tasks.llama.task.LlamaTask"
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_shipped_configs_build(path: Path) -> None:
    task = LlamaTask(**_config(path))
    assert task.sequences_per_step % task.micro_batch == 0


def test_all_sizes_have_configs() -> None:
    names = {p.stem for p in CONFIGS}
    assert names == {"llama60m", "llama130m", "llama350m", "llama1b", "llama7b", "llama_tiny"}
