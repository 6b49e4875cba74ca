"""reluscope._compiled: the one optional import of numba's kernel modules."""

from __future__ import annotations

import importlib

import pytest
import torch

from reluscope import _compiled
from reluscope.traversal import _front, traverse


@pytest.mark.parametrize("error", [ImportError("no numba"), RuntimeError("cannot cache"), OSError("libllvmlite.so")])
def test_kernels_that_do_not_load_give_none(monkeypatch, error):
    def fail(name):
        raise error

    monkeypatch.setattr(importlib, "import_module", fail)
    assert _compiled.load_kernels("reluscope.traversal._sparse_nb") is None


def test_llvm_that_does_not_load_leaves_the_dense_traversal(monkeypatch):
    """Regression: under an address-space rlimit llvmlite's library failed to load with OSError,
    which the front did not catch: traverse raised instead of running the dense engine."""
    def fail(name):
        raise OSError("Could not find/load shared object file 'libllvmlite.so'")

    monkeypatch.setattr(importlib, "import_module", fail)
    monkeypatch.setattr(_front, "nb", None)
    monkeypatch.setattr(_front, "_SPARSE_RECORD_COST", 0.0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 2, 3), torch.nn.ReLU(),
                                torch.nn.Flatten()).double().eval()
    x0, x1 = torch.randn(1, 7, 7, dtype=torch.float64), torch.randn(1, 7, 7, dtype=torch.float64)
    _front.TRACE = []
    try:
        tr = traverse(model, x0, x1)
        assert all(mode == "dense" for *_, mode in _front.TRACE) and tr.n_pieces >= 1  # the dense engine ran
    finally:
        _front.TRACE = None
