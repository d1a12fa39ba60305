"""CifarTask: argument checks, the presets, losses, selection options, evaluation, probes, and
a run through the real runner that is interrupted and resumed bit-identically."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.nn import functional as F

from optbench.errors import OptbenchError
from optbench.runner.build import build_task
from optbench.runner.config import compose
from optbench.runner.spec import check, resolve
from optbench.tasks.cifar.task import CifarTask

CPU = torch.device("cpu")
SYNTHETIC: dict[str, Any] = {"data": "synthetic", "synthetic_train": 300, "synthetic_test": 60}


def _prepared(**kwargs: Any) -> CifarTask:
    task = CifarTask(**{**SYNTHETIC, "model": "fc", "width": 16, **kwargs})
    task.prepare(CPU, torch.float32)
    return task


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"model": "resnet18", "depth": 3}, "task.depth applies to model=fc|cnn only"),
    ({"model": "airbench", "activation": "elu"}, "task.activation applies to model=fc|cnn"),
    ({"model": "fc", "whiten": True}, "task.whiten applies to model=airbench only"),
    ({"model": "cnn", "depth": 6}, "task.depth=6 must be at most 5"),
    ({"width": 0}, "task.width=0 must be a positive integer"),
    ({"batch_size": 0}, "task.batch_size=0 must be a positive integer"),
    ({"crop_pad": 20}, "task.crop_pad=20 must be between 0 and 16"),
    ({"classes": [1, 1]}, r"task.classes=\[1, 1\] must list at least two distinct"),
    ({"classes": [0, 10]}, r"in \[0, 9\] \(cifar10\)"),
    ({"subset_balanced": True}, "task.subset_balanced needs task.subset"),
    ({"subset": 25, "subset_balanced": True}, "multiple of the 10 classes"),
])
def test_bad_arguments_are_refused_in_one_line(kwargs, message):
    with pytest.raises(OptbenchError, match=message) as err:
        CifarTask(**kwargs)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(("override", "message"), [
    ("task.loss=l1", "task.loss='l1' is invalid"),
    ("task.model=vgg", "task.model='vgg' is invalid"),
    ("task.eval_split=train", "task.eval_split='train' is invalid"),
])
def test_wrong_config_values_are_caught_before_any_data_is_read(override, message):
    with pytest.raises(OptbenchError, match=message):
        check(compose(["task=cifar10", override]))


def test_data_errors_surface_at_prepare():
    with pytest.raises(OptbenchError, match="task.batch_size=128 exceeds the 100 training"):
        _prepared(subset=100, batch_size=128)
    with pytest.raises(OptbenchError, match="task.subset=400 exceeds the 300 training"):
        _prepared(subset=400)


@pytest.mark.parametrize("preset", ["cifar10", "cifar100", "cifar10_eos"])
def test_presets_build_from_the_archive_root_and_run_on_synthetic_data(preset, monkeypatch):
    monkeypatch.setenv("CIFAR_ROOT", "/data/somewhere")
    assert build_task(resolve(compose([f"task={preset}"])).config.task).root == "/data/somewhere"
    overrides = ["task.data=synthetic", "task.synthetic_train=200", "task.synthetic_test=20",
                 "task.width=4"]
    if preset == "cifar10_eos":
        overrides += ["task.subset=100"]
    else:
        overrides += ["task.batch_size=16"]
    task = build_task(resolve(compose([f"task={preset}", *overrides])).config.task)
    task.prepare(CPU, torch.float32)
    model = task.build_model()
    batch = next(task.train_stream(seed=0))
    assert torch.isfinite(task.loss(model, batch[0]))
    assert model(batch[0].images).shape[1] == (100 if preset == "cifar100" else 10)


def test_eos_preset_is_cohen_et_al_setting():
    task = build_task(resolve(compose(["task=cifar10_eos", "task.data=synthetic"])).config.task)
    task.prepare(CPU, torch.float32)
    assert task.full_batch and task.augment is None and task.loss_kind == "mse"
    assert task.work_per_step() == 5000 == len(task.train_split)
    step = next(task.train_stream(seed=0))
    assert [len(mb.labels) for mb in step] == [1000] * 5
    probes = task.probe_batches(seed=0)  # Lanczos over the whole 5k set, by default
    assert sum(len(mb.labels) for mb in probes) == 5000
    torch.testing.assert_close(torch.cat([mb.images for mb in probes]),
                               torch.cat([mb.images for mb in step]))


def test_mse_is_half_the_squared_distance_to_one_hot_targets_and_has_forward_ad():
    task = _prepared(loss="mse")
    model = task.build_model()
    [batch] = next(task.train_stream(seed=0))
    out = model(batch.images)
    expected = 0.5 * ((out - F.one_hot(batch.labels, 10).float()) ** 2).sum(1).mean()
    torch.testing.assert_close(task.loss(model, batch), expected)
    # forward-mode AD through the loss, as the curvature probes use it
    params = dict(model.named_parameters())
    tangents = {k: torch.ones_like(v) for k, v in params.items()}

    def loss_at(p):
        return task.loss(lambda x: torch.func.functional_call(model, p, (x,)), batch)

    _, derivative = torch.func.jvp(loss_at, (params,), (tangents,))
    assert torch.isfinite(derivative)


def test_cross_entropy_loss_and_evaluation_by_hand():
    task = _prepared(eval_split=50)
    model = task.build_model().eval()
    assert len(task.eval_set) == 50 and len(task.train_split) == 250
    images = task.normalize(task.eval_set.images)
    with torch.no_grad():
        out = model(images)
        metrics = task.evaluate(model)
    assert metrics["eval/loss"] == pytest.approx(F.cross_entropy(out, task.eval_set.labels).item())
    assert metrics["eval/acc"] == pytest.approx(
        (out.argmax(1) == task.eval_set.labels).float().mean().item())


def test_classes_subset_and_full_batch_through_the_task():
    task = _prepared(classes=[7, 2, 4], subset=30, subset_balanced=True, full_batch=True)
    assert task.num_classes == 3 and task.build_model().head.out_features == 3
    assert torch.bincount(task.train_split.labels).tolist() == [10, 10, 10]
    assert set(task.eval_set.labels.tolist()) == {0, 1, 2}
    assert task.augment is None and task.work_per_step() == 30
    steps = [next(task.train_stream(seed=s)) for s in (0, 1)]
    assert torch.equal(steps[0][0].images, steps[1][0].images)  # GD: the same batch, any seed


def test_minibatches_are_augmented_by_default_but_not_with_full_batch():
    assert _prepared().augment is not None and _prepared().work_per_step() == 128
    assert _prepared(full_batch=True).augment is None
    assert _prepared(full_batch=True, augment=True).augment is not None


def test_probe_batches_are_fixed_by_the_seed_and_not_augmented():
    task = _prepared(micro_batch=40)
    first = task.probe_batches(seed=3, size=100)
    assert [len(mb.labels) for mb in first] == [40, 40, 20]
    again, other = task.probe_batches(seed=3, size=100), task.probe_batches(seed=4, size=100)
    assert all(torch.equal(a.images, b.images) for a, b in zip(first, again))
    assert not torch.equal(first[0].labels, other[0].labels)
    # unaugmented training images: each is exactly one normalised training image
    train = task.normalize(task.train_split.images).flatten(1)
    probe = torch.cat([mb.images for mb in first]).flatten(1)
    assert (probe[:, None] == train[None]).all(-1).any(1).all()
    assert sum(len(mb.labels) for mb in task.probe_batches(seed=0)) == 300  # default: 512 or all


def test_an_interrupted_run_resumes_bit_identically(tmp_path, monkeypatch):
    from helpers import run_config

    from optbench.loggers.jsonl import read_metrics
    from optbench.runner.loop import Trainer

    def run(run_dir):
        cfg = compose(["task=cifar10", "task.data=synthetic", "task.model=cnn", "task.width=8",
                       "task.synthetic_train=256", "task.synthetic_test=64",
                       "task.batch_size=64", "optimizer=sgd", "optimizer.lr=0.05",
                       "logger=none", "train.steps=10", "train.log_every=1",
                       "train.checkpoint_every=3", "train.eval_every=5"])
        run_config(cfg, run_dir, "cifar10", "sgd")
        return [r["train/loss"] for r in read_metrics(run_dir / "metrics.jsonl")
                if "train/loss" in r]

    clean = run(tmp_path / "clean")
    original = Trainer.checkpoint

    def checkpoint_then_die(self):
        original(self)
        if self.state.step == 6:  # mid-epoch 2 (4 steps of 64 per epoch of 256)
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "checkpoint", checkpoint_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "checkpoint", original)
    assert run(tmp_path / "resumed") == clean
