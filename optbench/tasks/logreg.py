"""Binary L2-regularised logistic regression, with suboptimality against a high-precision optimum.

    f(w) = (1/n) Σᵢ log(1 + exp(−yᵢ xᵢᵀw)) + (λ/2) ‖w‖²,   yᵢ ∈ {−1, +1}

(docs/references.md §4.2). The optimum f* comes from scipy's L-BFGS in float64 to a gradient norm of
1e-12 (f is λ-strongly convex, so f(w) − f* ≤ ‖∇f(w)‖²/2λ), computed once per data set and λ
and cached on disk. With ``intercept`` a constant feature is appended, so the intercept is part
of w and regularised with it. The model starts at w = 0, as is usual for convex benchmarks, so
the run seed only changes the minibatch order.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from optbench.contract import EVAL_LOSS, Batch
from optbench.errors import OptbenchError
from optbench.tasks.linear import LinearTask

Source = Literal["synthetic", "breast_cancer", "svmlight"]


def synthetic_data(n: int, d: int, condition: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian features whose covariance has eigenvalues spaced geometrically from 1 down to
    1/condition (in a random basis); labels drawn from a logistic model with a random w."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((d, d)))
    scales = np.geomspace(1.0, 1.0 / condition, d) ** 0.5
    x = (rng.standard_normal((n, d)) * scales) @ basis.T
    w = rng.standard_normal(d)
    p = 1.0 / (1.0 + np.exp(-x @ w))
    y = np.where(rng.random(n) < p, 1.0, -1.0)
    return x, y


def _breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    """Wisconsin breast cancer (569 × 30), standardised; labels +1 benign, −1 malignant.

    Read from the CSV scikit-learn ships (what ``load_breast_cancer`` reads: a header line,
    then 30 features and a 0/1 target per row) without importing scikit-learn, whose import
    costs seconds (scipy, pandas, ...) on every run.
    """
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise OptbenchError("task.data=breast_cancer reads the data file of scikit-learn, which is not "
                            "installed: pip install scikit-learn")
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "breast_cancer.csv")
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    x = (x - x.mean(0)) / x.std(0)
    return x, np.where(y == 1, 1.0, -1.0)


def _svmlight(path: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_svmlight_file

    try:
        x, y = load_svmlight_file(path)
    except ValueError as err:
        raise OptbenchError(f"task.path={path} is not a LIBSVM-format file: {err}") from None
    labels = np.unique(y)
    if len(labels) != 2:
        raise OptbenchError(
            f"task.path={path} has {len(labels)} distinct labels; logreg needs exactly two"
        )
    return np.asarray(x.todense()), np.where(y == labels[1], 1.0, -1.0)


def objective(w: np.ndarray, x: np.ndarray, y: np.ndarray, l2: float) -> tuple[float, np.ndarray]:
    """f(w) and ∇f(w) in float64, for the reference solve."""
    z = y * (x @ w)
    loss = np.logaddexp(0.0, -z).mean() + 0.5 * l2 * w @ w
    grad = -(x.T @ (y * np.exp(-np.logaddexp(0.0, z)))) / len(y) + l2 * w
    return float(loss), grad


def _cache_dir() -> Path:
    base = os.environ.get("OPTBENCH_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")
    ) / "optbench"
    return Path(base) / "logreg"


def optimum(x: np.ndarray, y: np.ndarray, l2: float) -> float:
    """f* by L-BFGS in float64, cached on disk under a hash of the data and λ."""
    key = hashlib.sha256(x.tobytes() + y.tobytes() + repr(l2).encode()).hexdigest()[:24]
    cached = _cache_dir() / f"{key}.json"
    if cached.exists():
        return json.loads(cached.read_text())["f_star"]
    from scipy.optimize import minimize  # a second: only when f* is not cached

    result = minimize(
        objective, np.zeros(x.shape[1]), args=(x, y, l2), jac=True, method="L-BFGS-B",
        options={"gtol": 1e-12, "ftol": 0.0, "maxiter": 100_000, "maxcor": 30},
    )
    f_star = min(result.fun, objective(np.zeros(x.shape[1]), x, y, l2)[0])
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps({"f_star": f_star, "grad_norm": float(np.abs(result.jac).max())}))
    except OSError:
        pass  # a read-only cache costs a recomputation next time, nothing more
    return f_star


class LogisticRegression(LinearTask):
    """Binary L2-regularised logistic regression (synthetic, breast_cancer or LIBSVM data)."""

    def __init__(
        self,
        data: Source = "breast_cancer",
        path: str | None = None,
        n: int = 1000,
        d: int = 20,
        condition: float = 10.0,
        data_seed: int = 0,
        l2: float = 1e-2,
        intercept: bool = True,
        batch_size: int | None = None,
    ) -> None:
        if data == "svmlight":
            if not path:
                raise OptbenchError("task.data=svmlight needs task.path=FILE (a LIBSVM-format file)")
            if not Path(path).is_file():
                raise OptbenchError(f"task.path={path}: no such file (task.data=svmlight reads it)")
        if n < 2 or d < 1:
            raise OptbenchError(f"task.n={n} and task.d={d} must be at least 2 and 1")
        if condition < 1.0:
            raise OptbenchError(f"task.condition={condition} must be >= 1")
        if l2 <= 0:
            raise OptbenchError(f"task.l2={l2} must be > 0 (f* is defined for strongly convex f)")
        if batch_size is not None and batch_size < 1:
            raise OptbenchError(f"task.batch_size={batch_size} must be >= 1, or null for full batch")
        self.source, self.path, self.l2 = data, path, l2
        self.n, self.d, self.condition, self.data_seed = n, d, condition, data_seed
        self.intercept, self.batch_size = intercept, batch_size

    def _load(self) -> tuple[np.ndarray, np.ndarray]:
        if self.source == "synthetic":
            x, y = synthetic_data(self.n, self.d, self.condition, self.data_seed)
        elif self.source == "breast_cancer":
            x, y = _breast_cancer()
        else:
            x, y = _svmlight(self.path)
        if self.intercept:
            x = np.hstack([x, np.ones((len(x), 1))])
        return x, y

    def prepare(self, device: torch.device, dtype: torch.dtype) -> None:
        x, y = self._load()
        self.f_star = optimum(x, y, self.l2)
        self.x = torch.as_tensor(x, dtype=dtype, device=device)
        self.y = torch.as_tensor(y, dtype=dtype, device=device)
        if self.batch_size is not None and self.batch_size > len(y):
            raise OptbenchError(
                f"task.batch_size={self.batch_size} exceeds the {len(y)} examples of the data set"
            )

    def _features(self) -> int:
        """The model's input size, known before the data is loaded except for LIBSVM files."""
        if hasattr(self, "x"):
            return self.x.shape[1]
        if self.source == "svmlight":
            from sklearn.datasets import load_svmlight_file

            d = load_svmlight_file(self.path)[0].shape[1]
        else:
            d = self.d if self.source == "synthetic" else 30  # breast_cancer's 30 features
        return d + int(self.intercept)

    def linear_shape(self) -> tuple[int, int]:
        return self._features(), 1

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        x, y = batch
        margins = y * model(x).squeeze(-1)
        return F.softplus(-margins).mean() + 0.5 * self.l2 * model.weight.square().sum()

    def evaluate(self, model: nn.Module) -> dict[str, float]:
        w = model.weight.detach().double().flatten()
        x, y = self.x.double(), self.y.double()
        margins = y * (x @ w)
        f = (F.softplus(-margins).mean() + 0.5 * self.l2 * w @ w).item()
        return {
            EVAL_LOSS: f,
            "eval/acc": (margins > 0).double().mean().item(),
            "eval/suboptimality": f - self.f_star,
        }
