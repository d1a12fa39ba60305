"""Logistic regression: the objective, the reference optimum, the data sources, and GD to f*."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import optbench, summary
from sklearn.datasets import dump_svmlight_file
from sklearn.linear_model import LogisticRegression as SkLogReg

from optbench.errors import OptbenchError
from optbench.tasks.logreg import LogisticRegression, objective, optimum, synthetic_data


def test_gradient_matches_autograd():
    x, y = synthetic_data(50, 5, 10.0, seed=1)
    w = np.random.default_rng(0).standard_normal(5)
    f, grad = objective(w, x, y, l2=0.1)
    wt = torch.tensor(w, requires_grad=True)
    ft = torch.nn.functional.softplus(-torch.tensor(y) * (torch.tensor(x) @ wt)).mean() + 0.05 * wt @ wt
    ft.backward()
    assert f == pytest.approx(ft.item(), rel=1e-12)
    np.testing.assert_allclose(grad, wt.grad.numpy(), rtol=1e-10)


def test_optimum_matches_scikit_learn():
    x, y = synthetic_data(300, 8, 50.0, seed=2)
    l2 = 1e-3
    # sklearn minimises ½‖w‖² + C Σ log(1 + exp(-y xᵀw)): the same minimiser for C = 1/(λn)
    reference = SkLogReg(C=1 / (l2 * len(y)), fit_intercept=False, tol=1e-12, max_iter=10_000)
    w = reference.fit(x, y).coef_.ravel()
    assert optimum(x, y, l2) == pytest.approx(objective(w, x, y, l2)[0], abs=1e-10)


def test_optimum_is_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("OPTBENCH_CACHE_DIR", str(tmp_path))
    x, y = synthetic_data(100, 4, 2.0, seed=3)
    first = optimum(x, y, 0.01)
    assert len(list((tmp_path / "logreg").glob("*.json"))) == 1
    assert optimum(x, y, 0.01) == first


def test_svmlight_file_with_zero_one_labels(tmp_path):
    x, y = synthetic_data(40, 3, 1.0, seed=4)
    path = tmp_path / "data.svm"
    dump_svmlight_file(x, (y > 0).astype(int), str(path))
    task = LogisticRegression(data="svmlight", path=str(path), intercept=False)
    task.prepare(torch.device("cpu"), torch.float64)
    torch.testing.assert_close(task.x, torch.tensor(x), rtol=1e-6, atol=1e-6)
    assert set(task.y.tolist()) == {-1.0, 1.0} and torch.equal(task.y, torch.tensor(y))


def test_svmlight_file_with_three_classes_is_refused(tmp_path):
    path = tmp_path / "data.svm"
    dump_svmlight_file(np.eye(3), np.array([0, 1, 2]), str(path))
    task = LogisticRegression(data="svmlight", path=str(path))
    with pytest.raises(OptbenchError, match="3 distinct labels"):
        task.prepare(torch.device("cpu"), torch.float32)


def test_minibatch_loss_is_unbiased_for_the_objective():
    task = LogisticRegression(data="synthetic", n=64, d=3, batch_size=16)
    task.prepare(torch.device("cpu"), torch.float64)
    model = task.build_model().double()
    torch.nn.init.normal_(model.weight)
    stream = task.train_stream(seed=0)
    epoch = [task.loss(model, next(stream)[0]) for _ in range(4)]  # one pass over the data
    full = task.loss(model, (task.x, task.y))
    assert torch.stack(epoch).mean().item() == pytest.approx(full.item(), rel=1e-12)


def test_gradient_descent_reaches_the_optimum_on_breast_cancer(tmp_path):
    run_dir = tmp_path / "D"
    # lr ≈ 1/L for L = λmax(XᵀX/n)/4 + λ ≈ 3.33 on the standardised data
    optbench("run", "task=logreg", "task.data=breast_cancer", "optimizer=sgd", "optimizer.lr=0.3",
             "train.steps=3000", "train.eval_every=1000", "logger=none", f"hydra.run.dir={run_dir}")
    final = summary(run_dir)["final"]
    assert 0 <= final["eval/suboptimality"] < 1e-6
    assert final["eval/acc"] > 0.97
