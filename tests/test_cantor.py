"""CantorNet: decision regions, boundary vertices from the Cantor construction, folding path."""

from fractions import Fraction

import pytest
import torch

from reluscope.folding.cantor import (
    cantor_boundary_vertices,
    cantor_intervals,
    cantor_path,
    cantor_region,
    cantornet,
    cantornet_folding,
    cantornet_spec,
    rational_patterns,
    rational_walk,
)
from reluscope.testing.folding import chi_reference
from reluscope.traversal import traverse
from reluscope.folding import path_folding


def _points(n=20_000, seed=0):
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("rep", ["A", "B", "C"])
def test_decision_equals_region(k, rep):
    p = _points(seed=k)
    region = cantor_region(k)
    net = cantornet(k, rep, dtype=torch.float64)
    with torch.no_grad():
        out = net(p)[:, 0]
    # every representation computes N = y - g_k(x) exactly, not just its sign
    torch.testing.assert_close(out, p[:, 1] - region.boundary(p[:, 0]), atol=1e-12, rtol=0)
    clear = (p[:, 1] - region.boundary(p[:, 0])).abs() > 1e-9
    assert torch.equal((out <= 0)[clear], region(p)[clear])


def test_boundary_vertices_match_cantor_construction():
    F = Fraction
    assert cantor_boundary_vertices(1) == [(F(0), F(1)), (F(1, 3), F(1, 2)), (F(2, 3), F(1, 2)), (F(1), F(1))]
    assert cantor_boundary_vertices(2) == [
        (F(0), F(1)), (F(1, 9), F(1, 2)), (F(2, 9), F(1, 2)), (F(1, 3), F(1)),
        (F(2, 3), F(1)), (F(7, 9), F(1, 2)), (F(8, 9), F(1, 2)), (F(1), F(1)),
    ]
    assert cantor_intervals(2) == [(F(0), F(1, 9)), (F(2, 9), F(1, 3)), (F(2, 3), F(7, 9)), (F(8, 9), F(1))]


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("rep", ["A", "B", "C"])
def test_network_boundary_is_the_polygon_through_the_vertices(k, rep):
    """g(x) = y - N(x, y) passes through every vertex and is linear between neighbours."""
    net = cantornet(k, rep, dtype=torch.float64)
    verts = cantor_boundary_vertices(k)

    def g(xs):
        pts = torch.stack([torch.tensor(xs, dtype=torch.float64), torch.full((len(xs),), 0.3, dtype=torch.float64)], 1)
        with torch.no_grad():
            return 0.3 - net(pts)[:, 0]

    vx = [float(x) for x, _ in verts]
    torch.testing.assert_close(g(vx), torch.tensor([float(y) for _, y in verts], dtype=torch.float64))
    for (xa, ya), (xb, yb) in zip(verts[:-1], verts[1:]):
        for s in (0.25, 0.5, 0.8):
            x = float(xa + (xb - xa) * Fraction(s))
            assert float(g([x])[0]) == pytest.approx(float(ya + (yb - ya) * Fraction(s)), abs=1e-12)


def test_representation_sizes():
    def hidden(net):
        return sum(m.out_features for m in net if isinstance(m, torch.nn.Linear)) - 1

    assert hidden(cantornet(3, "A")) == 15  # 5 units per level
    # O(2^k): doubling per level for the DNF forms
    b = [hidden(cantornet(k, "B")) for k in range(2, 7)]
    assert all(1.7 < q / p < 2.3 for p, q in zip(b[:-1], b[1:]))


def test_folding_along_the_authors_path():
    x0, x1 = cantor_path()
    res = path_folding(cantornet(1, "A", dtype=torch.float64), x0, x1)
    # k = 1 along y = 3/4: the path leaves R_1 only over the valley around [1/3, 2/3]
    inside = [not bool(w[-1]) for w in res.walk]  # output bit = N > 0 = outside
    assert inside[0] and inside[-1] and not all(inside)
    assert res.chi > 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="k: expected an integer >= 1"):
        cantornet(0)
    with pytest.raises(ValueError, match="representation"):
        cantornet(2, "D")
    with pytest.raises(ValueError, match=r"\[N, 2\]"):
        cantor_region(2)(torch.zeros(3))


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_rational_walk_agrees_with_float_traversal_for_A(k):
    """Two independent exact traversals (rationals here, float64 in reluscope.traversal) agree
    where no unit is degenerate, and each rational region's midpoint has the region's pattern."""
    spec = cantornet_spec(k, "A")
    ts, pats = rational_walk(spec, (0, Fraction(3, 4)), (1, Fraction(3, 4)))
    x0, x1 = cantor_path()
    tr = traverse(cantornet(k, "A", dtype=torch.float64), x0, x1, include_output=True)
    assert torch.equal(tr.patterns, torch.tensor(pats))
    torch.testing.assert_close(tr.t, torch.tensor([float(t) for t in ts], dtype=torch.float64))
    mids = [((ts[i] + ts[i + 1]) / 2, Fraction(3, 4)) for i in range(len(pats))]
    assert rational_patterns(spec, mids) == pats


def test_cantornet_folding_table():
    rows = {(r.k, r.representation): r for r in cantornet_folding((1, 2, 3))}
    assert rows[1, "A"].chi_exact == pytest.approx(0.5) and rows[2, "A"].chi_exact == pytest.approx(11 / 16)
    for k in (1, 2, 3):  # the authors' finding: the recursive representation folds most
        assert rows[k, "A"].chi_exact > max(rows[k, "B"].chi_exact, rows[k, "C"].chi_exact)
    spec = cantornet_spec(2, "B")
    grid = rational_patterns(spec, [(Fraction(i, 10), Fraction(3, 4)) for i in range(11)])
    assert rows[2, "B"].chi_grid == pytest.approx(chi_reference(grid))
