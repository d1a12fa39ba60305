"""CIFAR networks: each fits synthetic separable data in a short CPU run; parameter roles;
airbench's whitened stem; shapes of Cohen et al.'s networks."""

from __future__ import annotations

import pytest
import torch

from optbench.contract import ParamRole
from optbench.tasks.cifar.task import CifarTask

SMALL = {"fc": {"width": 64}, "cnn": {"width": 16}, "resnet18": {"width": 8},
         "airbench": {"width": 16}}
CPU = torch.device("cpu")


def _task(model: str, **kwargs) -> CifarTask:
    task = CifarTask(data="synthetic", synthetic_train=400, synthetic_test=100, model=model,
                     batch_size=50, augment=False, **{**SMALL[model], **kwargs})
    task.prepare(CPU, torch.float32)
    return task


@pytest.mark.parametrize("model", SMALL)
def test_each_model_fits_the_synthetic_training_set(model, one_thread):
    task = _task(model)
    torch.manual_seed(0)
    net = task.build_model()
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    stream = task.train_stream(seed=0)
    for _ in range(40):  # five epochs
        [batch] = next(stream)
        optimizer.zero_grad()
        task.loss(net, batch).backward()
        optimizer.step()
    net.eval()
    with torch.no_grad():
        [train] = task.probe_batches(seed=0, size=400)
        accuracy = (net(train.images).argmax(1) == train.labels).float().mean().item()
        metrics = task.evaluate(net)
    assert accuracy > 0.95, f"{model}: training accuracy {accuracy:.3f}"
    assert set(metrics) == {"eval/loss", "eval/acc"} and 0 <= metrics["eval/acc"] <= 1


@pytest.mark.parametrize(("model", "embedding", "head", "matrices"), [
    ("fc", "stem.weight", "head.weight", {"hidden.1.weight"}),
    ("cnn", "stem.weight", "head.weight", {"hidden.2.weight"}),
    ("airbench", "stem.weight", "head.weight", {"blocks.1.0.weight", "blocks.3.4.weight"}),
    ("resnet18", "stem.weight", "head.weight",
     {"blocks.0.conv1.weight", "blocks.2.shortcut.0.weight"}),
])
def test_parameter_roles(model, embedding, head, matrices):
    task = CifarTask(model=model, **SMALL[model])
    net = task.build_model()
    roles = task.param_roles(net)
    params = dict(net.named_parameters())
    assert set(roles) == set(params)
    assert roles[embedding] == ParamRole.EMBEDDING and roles[head] == ParamRole.HEAD
    assert matrices <= {n for n, r in roles.items() if r == ParamRole.MATRIX}
    for name, role in roles.items():
        if role == ParamRole.MATRIX:
            assert params[name].ndim in (2, 4)  # hidden linear weights, conv kernels
        if params[name].ndim == 1:
            assert role == ParamRole.VECTOR  # biases, BatchNorm gains and shifts


def test_cohen_networks_have_the_reference_shapes():
    fc = CifarTask(model="fc").build_model()
    assert [tuple(p.shape) for p in fc.parameters()] == [
        (200, 3072), (200,), (200, 200), (200,), (10, 200), (10,)]
    cnn = CifarTask(model="cnn", activation="relu").build_model()
    assert [tuple(p.shape) for p in cnn.parameters()] == [
        (32, 3, 3, 3), (32,), (32, 32, 3, 3), (32,), (10, 2048), (10,)]
    assert isinstance(cnn.hidden[0], torch.nn.ReLU)


def test_resnet18_has_its_usual_size():
    net = CifarTask(model="resnet18").build_model()
    assert sum(p.numel() for p in net.parameters()) == 11_173_962  # the CIFAR ResNet-18


def test_airbench_stem_whitens_the_training_patches():
    task = _task("airbench")
    net = task.build_model()
    assert not net.stem.weight.requires_grad  # frozen, as in airbench
    images = task.normalize(task.train_split.images)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, net.stem.weight)[:, :12]
    covariance = torch.cov(out.permute(1, 0, 2, 3).reshape(12, -1))
    torch.testing.assert_close(covariance, torch.eye(12), atol=0.05, rtol=0.05)


def test_models_build_on_the_meta_device_before_prepare():
    for model in SMALL:
        with torch.device("meta"):
            net = CifarTask(model=model).build_model()
        assert all(p.is_meta for p in net.parameters())
