"""The heavy_tail task: Zipf class frequencies, the paper's dyadic data set, frequency groups whose
losses average to the overall loss, and gradient descent that is slow on the rare classes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from helpers import optbench, summary

from optbench.errors import OptbenchError
from optbench.loggers.jsonl import read_metrics
from optbench.tasks.heavy_tail import HeavyTail

CPU = torch.device("cpu")


def prepared(**kwargs) -> HeavyTail:
    task = HeavyTail(**kwargs)
    task.prepare(CPU, torch.float32)
    return task


def test_class_frequencies_follow_zipf():
    s = 1.2
    task = prepared(classes=60, top=2000, exponent=s)
    counts = torch.bincount(task.y, minlength=60).numpy()
    rank = np.arange(1, 61)
    assert (counts == np.rint(2000 / rank**s)).all()
    frequency = counts / counts.sum()
    zipf = rank**-s / (rank**-s).sum()
    np.testing.assert_allclose(frequency, zipf, rtol=0.04)  # rounding: the rarest class has 15 examples
    slope = np.polyfit(np.log(rank), np.log(frequency), 1)[0]
    assert slope == pytest.approx(-s, abs=0.01)


def test_dyadic_is_the_papers_data_set():
    """Size m = 5 of the paper's table: 31 classes, 160 examples, 192 dimensions; 2^i classes of
    2^(5 - i) examples at level i, each level a fifth of the data and one group."""
    task = prepared(classes=31, top=32, frequencies="dyadic", groups=5)
    assert (task.n, task.d, tuple(task.x.shape)) == (160, 192, (160, 192))
    assert task.counts.tolist() == [32] + [16] * 2 + [8] * 4 + [4] * 8 + [2] * 16
    table = task.group_table()
    assert [(g.first, g.last, g.examples) for g in table] == [(1, 1, 32), (2, 3, 32), (4, 7, 32),
                                                               (8, 15, 32), (16, 31, 32)]
    assert 0.0 <= task.x.min() and task.x.max() < 1.0  # uniform on [0, 1), as the paper


def test_groups_are_contiguous_frequency_bins_of_about_equal_share():
    task = HeavyTail(classes=1000, top=1000, groups=10)
    table = task.group_table()
    assert 5 <= len(table) <= 10
    assert table[0].first == 1 and table[-1].last == 1000
    assert all(a.last + 1 == b.first and a.least >= b.most for a, b in itertools.pairwise(table))
    assert sum(g.examples for g in table) == task.n
    assert all(g.share < 0.2 for g in table)  # class 1 alone holds 13% of the examples


def test_group_losses_average_to_the_overall_loss():
    task = prepared(classes=40, top=80, groups=6, inputs="gaussian")
    torch.manual_seed(0)
    model = task.build_model()
    torch.nn.init.normal_(model.weight, std=0.3)
    with torch.no_grad():
        metrics = task.evaluate(model)
    weights = [g.examples / task.n for g in task.group_table()]
    groups = [metrics[f"eval/loss_group_{g}"] for g in range(len(weights))]
    assert f"eval/loss_group_{len(weights)}" not in metrics
    assert sum(w * loss for w, loss in zip(weights, groups)) == pytest.approx(metrics["eval/loss"], rel=1e-9)
    assert len(set(groups)) == len(groups)  # not all equal: the weights matter
    assert metrics["eval/loss"] == pytest.approx(
        torch.nn.functional.cross_entropy(model(task.x), task.y).item(), rel=1e-5)
    assert 0.0 <= metrics["eval/acc"] <= 1.0


def test_model_starts_at_log_c_and_builds_on_meta():
    task = prepared(classes=20, top=20)
    with torch.no_grad():
        metrics = task.evaluate(task.build_model())
    assert all(v == pytest.approx(np.log(20)) for k, v in metrics.items() if k.startswith("eval/loss"))
    with torch.device("meta"):
        model = HeavyTail(classes=2047, top=2048, frequencies="dyadic").build_model()
    assert tuple(model.weight.shape) == (2047, 24576)  # the paper's size 11, without its 2.2 GB of data
    assert task.param_roles(task.build_model()) == {"weight": "head"}


def test_minibatches_and_probe_batches():
    task = prepared(classes=10, top=20, batch_size=8)
    stream = task.train_stream(seed=3)
    (x, y), = next(stream)
    assert x.shape == (8, task.d) and task.work((x, y)) == 8 == task.work_per_step()
    assert task.flops_per_work() == 4 * task.d * 10
    (px, _), = task.probe_batches(seed=0, size=5)
    assert px.shape == (5, task.d)
    assert task.probe_batches(seed=0)[0][0] is task.x


def test_bad_arguments_are_user_errors():
    with pytest.raises(OptbenchError, match="task.top=10 is too small.*task.top >= 26"):
        HeavyTail(classes=50, top=10)
    with pytest.raises(OptbenchError, match="task.frequencies=power"):
        HeavyTail(frequencies="power")
    with pytest.raises(OptbenchError, match="task.groups=0"):
        HeavyTail(groups=0)


def test_gradient_descent_lowers_the_loss_but_slowly_on_rare_classes(tmp_path):
    optbench("run", "task=heavy_tail", "task.classes=63", "task.top=64", "task.frequencies=dyadic",
             "task.groups=6", "optimizer=sgd", "optimizer.lr=0.05", "logger=none", "train.steps=40",
             "train.eval_every=40", "train.log_every=10", f"hydra.run.dir={tmp_path}")
    assert summary(tmp_path)["status"] == "completed"
    first, last = (r for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/loss" in r)
    assert last["eval/loss"] < 0.9 * first["eval/loss"]
    assert last["eval/loss_group_0"] < 0.6 * first["eval/loss_group_0"]  # the most frequent class
    assert last["eval/loss_group_5"] > 0.95 * first["eval/loss_group_5"]  # the 32 rarest: no progress
