"""The shared input and options layer (`reluscope._checks`)."""

import enum

import numpy as np
import pytest
import torch

from reluscope._checks import (
    DEFAULT_MEMORY_BUDGET,
    MemoryBudgetError,
    as_batch,
    as_enum,
    as_single,
    check_int,
    check_memory_budget,
    rows_within_budget,
    same_device,
    single_thread,
)
from reluscope.folding.global_ import Aggregator, PairStrategy
from reluscope.hull.classifier import HullMode, NearestConvexHull
from reluscope.patterns.bits import HammingMethod
from reluscope.regions.dual import FiedlerSolver
from reluscope.tangent.features import Normalization
from reluscope.tangent.scores import ScoreMethod
from reluscope.tangent.similarity import Metric
from reluscope.train import Optimizer


class Colour(str, enum.Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


def test_as_enum_takes_members_values_and_any_case():
    assert as_enum(Colour.RED, Colour, "colour") is Colour.RED
    assert as_enum("green", Colour, "colour") is Colour.GREEN
    assert as_enum("BLUE", Colour, "colour") is Colour.BLUE


@pytest.mark.parametrize("bad", ["purple", 1, None, True])
def test_as_enum_names_the_argument_and_every_allowed_value(bad):
    with pytest.raises(ValueError, match=r"colour: expected one of 'red', 'green' or 'blue', got"):
        as_enum(bad, Colour, "colour")


def test_every_option_is_a_str_enum_so_typer_takes_it_directly():
    for cls in (Aggregator, PairStrategy, HullMode, HammingMethod, FiedlerSolver, Normalization, ScoreMethod, Metric, Optimizer):
        assert issubclass(cls, str) and issubclass(cls, enum.Enum), cls
        for member in cls:
            assert as_enum(member.value, cls, "x") is member


def test_nearest_convex_hull_takes_the_mode_enum_and_refuses_unknown_modes():
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [5.0, 5.0], [6.0, 5.0], [5.0, 6.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    assert (NearestConvexHull(mode=HullMode.EXACT).fit(x, y).predict(x) == y).all()
    with pytest.raises(ValueError, match="mode: expected 'exact' or 'rge', got 'fast'"):
        NearestConvexHull(mode="fast").fit(x, y)


def test_check_int_accepts_python_and_numpy_integers():
    assert check_int(3, "n") == 3 and type(check_int(np.int64(3), "n")) is int
    assert check_int(0, "n", minimum=0) == 0
    assert check_int(-5, "n", minimum=None) == -5


@pytest.mark.parametrize("bad", [0, -1, 0.5, 2.0, True, False, np.float64(3.0), "3", None, np.bool_(True)])
def test_check_int_refuses_floats_bools_strings_and_small_values(bad):
    with pytest.raises(ValueError, match=r"n: expected an integer >= 1, got"):
        check_int(bad, "n")


def test_check_int_names_what_the_integer_counts():
    with pytest.raises(ValueError, match=r"k: expected an integer >= 2 \(recursion depth\), got 1"):
        check_int(1, "k", minimum=2, what="recursion depth")


def test_as_batch_keeps_batches_and_refuses_one_unbatched_input():
    x = as_batch(np.zeros((3, 4), dtype=np.float32), "x", (4,))
    assert isinstance(x, torch.Tensor) and x.shape == (3, 4) and x.dtype == torch.float32
    with pytest.raises(ValueError, match=r"x: expected shape \[N, 4\], got \[4\] \(add a batch dimension"):
        as_batch(torch.zeros(4), "x", (4,))
    with pytest.raises(ValueError, match="x: expected a batch"):
        as_batch(torch.zeros(4), "x")
    with pytest.raises(ValueError, match="empty batch"):
        as_batch(torch.zeros(0, 4), "x", (4,))
    assert as_batch(torch.zeros(0, 4), "x", (4,), allow_empty=True).shape == (0, 4)
    with pytest.raises(ValueError, match="NaN"):
        as_batch(torch.tensor([[0.0, float("nan")]]), "x", (2,))
    assert as_batch(torch.zeros(2, 1, 5, 5), "x").shape == (2, 1, 5, 5)


def test_as_single_returns_a_batch_of_one_and_points_batches_to_the_batch_function():
    assert as_single(torch.zeros(4), "x0", (4,)).shape == (1, 4)
    assert as_single(torch.zeros(1, 4), "x0", (4,)).shape == (1, 4)
    with pytest.raises(ValueError, match=r"x0: expected one input of shape \[4\].*got a batch of 2 .*use traverse_many for batches"):
        as_single(torch.zeros(2, 4), "x0", (4,), batch_function="traverse_many")
    with pytest.raises(ValueError, match=r"x0: expected one input of shape \[4\].*got shape \[5\]"):
        as_single(torch.zeros(5), "x0", (4,))
    # unknown input shape (a conv net built without one): 3-D is one image, 4-D a batch that must hold one
    assert as_single(torch.zeros(1, 5, 5), "x0").shape == (1, 1, 5, 5)
    assert as_single(torch.zeros(1, 1, 5, 5), "x0").shape == (1, 1, 5, 5)
    with pytest.raises(ValueError, match="got a batch of 3"):
        as_single(torch.zeros(3, 1, 5, 5), "x0")
    with pytest.raises(TypeError, match="x0: expected a real floating tensor"):
        as_single(torch.zeros(4, dtype=torch.bool), "x0", (4,))


def test_same_device_returns_the_common_device_and_refuses_mixed_ones():
    a, b = torch.zeros(2), torch.zeros(2, device="meta")
    assert same_device(x0=a, x1=a, mask=None) == torch.device("cpu")
    with pytest.raises(ValueError, match=r"x1: expected a tensor on cpu like x0, got meta; move it with \.to\('cpu'\)"):
        same_device(x0=a, x1=b)


def test_memory_budget_is_bytes_and_rows_are_refused_up_front_with_the_estimate():
    assert DEFAULT_MEMORY_BUDGET == 2 * 1024**3
    assert check_memory_budget(2e9) == 2_000_000_000
    for bad in (0, -1, float("inf"), float("nan"), "1GB", True):
        with pytest.raises(ValueError, match="memory_budget: expected a positive number of bytes"):
            check_memory_budget(bad)
    assert rows_within_budget(100, 1000, what="pair") == 10
    assert rows_within_budget(100, 1000, what="pair", total=3) == 3
    assert rows_within_budget(100, 100, what="pair", total=0) == 1
    with pytest.raises(MemoryBudgetError, match=r"memory_budget: one segment needs about 1\.0 MiB \(1048576 bytes\), over memory_budget=1000 bytes; pass memory_budget >= 1048576"):
        rows_within_budget(2**20, 1000, what="segment")
    assert issubclass(MemoryBudgetError, MemoryError)


def test_single_thread_restores_the_thread_count_even_on_error():
    before = torch.get_num_threads()
    with single_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), single_thread():
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with single_thread(False):
        assert torch.get_num_threads() == before
    with single_thread(device="meta"):
        assert torch.get_num_threads() == before


def test_library_calls_leave_the_global_thread_count_alone():
    from reluscope.regions import regions_2d
    from reluscope.train import mlp

    before = torch.get_num_threads()
    regions_2d(mlp(2, [4], 2, seed=0).double(), box=(-1, 1, -1, 1))
    assert torch.get_num_threads() == before
