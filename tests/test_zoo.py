"""optimizer=zoo: pytorch-optimizer's optimizers by name, and clear errors."""

from __future__ import annotations

import sys

import pytest
import torch

from optbench.errors import OptbenchError
from optbench.optimizers.zoo import zoo


def _params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_an_optimizer_by_name():
    from pytorch_optimizer import Adan

    assert isinstance(zoo(_params(), name="adan", lr=0.01), Adan)


def test_an_unknown_name_suggests_similar_ones():
    with pytest.raises(OptbenchError, match="optimizer.name=adanx is not a pytorch-optimizer") as err:
        zoo(_params(), name="adanx")
    assert "adan" in str(err.value).split("similar:")[1]


def test_without_the_package_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch_optimizer", None)  # as if not installed
    with pytest.raises(OptbenchError, match=r"pip install 'optbench\[zoo\]'"):
        zoo(_params(), name="adan")
