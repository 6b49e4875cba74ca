"""The dual graph, its Fiedler partition in every graph variant, the authors' grid construction,
and the variant comparison."""

import numpy as np
import pytest
import torch
import torch.nn as nn

from reluscope.regions import GraphVariant, compare_variants, dual_graph, fiedler_partition, fiedler_score, regions_2d
from reluscope.regions.dual import DualGraph, FiedlerSolver, _hamming_pairs, _partition, grid_points, positive_class_area
from reluscope.testing.topology import grid_decision, kappa_from_labels


def _mlp(widths, seed, dtype=torch.float64):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).to(dtype)


def _dense_fiedler(g):
    L = g.laplacian().toarray()
    vals, vecs = np.linalg.eigh(L)
    return vals[1], vecs[:, 1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fiedler_sparse_matches_dense_eigh(seed):
    rm = regions_2d(_mlp([2, 10, 10, 2], seed), box=(-2, 2, -2, 2))
    for variant in ("length", "unit"):
        sparse = fiedler_partition(rm, variant=variant, solver=FiedlerSolver.SHIFT_INVERT)
        val, vec = _dense_fiedler(sparse.graph)
        assert sparse.value == pytest.approx(val, rel=1e-6)
        assert abs(abs(vec @ sparse.vector) - 1) < 1e-6
        assert sparse.n_components == 1


@pytest.mark.parametrize("weight", ["length", "unit"])
def test_normalised_laplacians_match_dense_generalised_problem(weight):
    from scipy.linalg import eigh

    rm = regions_2d(_mlp([2, 10, 10, 2], 3), box=(-2, 2, -2, 2))
    rw = fiedler_partition(rm, variant=f"{weight}-rw")
    sym = fiedler_partition(rm, variant=f"{weight}-sym", solver="shift-invert")
    L = rw.graph.laplacian().toarray()
    D = np.diag(L.diagonal())
    vals, vecs = eigh(L, D)  # L v = lambda D v: the random-walk (normalised-cut) problem
    assert rw.value == pytest.approx(vals[1], rel=1e-6) and sym.value == pytest.approx(vals[1], rel=1e-6)
    v = vecs[:, 1] / np.linalg.norm(vecs[:, 1])
    assert abs(abs(v @ rw.vector) - 1) < 1e-6
    # D^1/2 is positive, so the symmetric eigenvector has the random-walk one's signs
    assert (rw.side == sym.side).all() or (rw.side == ~sym.side).all()


def test_dual_graph_edges_are_adjacent_faces_differing_in_one_bit():
    rm = regions_2d(_mlp([2, 8, 8, 1], 4), box=(-2, 2, -2, 2))
    g = dual_graph(rm)
    diff = (rm.patterns[g.pairs[:, 0]] != rm.patterns[g.pairs[:, 1]]).sum(1)
    assert (diff == 1).all()  # generic neighbours differ in exactly one bit
    assert (g.weights > 0).all()
    np.testing.assert_allclose(2 * g.weights.sum() + rm.edge_lengths[(rm.edge_faces == -1).any(1)].sum(),
                               sum(np.linalg.norm(np.roll(rm.face(f), -1, 0) - rm.face(f), axis=1).sum() for f in range(rm.n_regions)))
    assert set(map(tuple, g.pairs.tolist())) <= set(map(tuple, _hamming_pairs(rm.patterns).tolist()))
    assert (dual_graph(rm, weight="unit").weights == 1).all()


def test_hamming_pairs_match_brute_force():
    rng = np.random.default_rng(0)
    P = rng.random((60, 7)) < 0.5
    P = np.unique(P, axis=0)
    D = (P[:, None] != P[None]).sum(2)
    brute = {(i, j) for i, j in zip(*np.nonzero(D == 1)) if i < j}
    assert set(map(tuple, _hamming_pairs(P).tolist())) == brute


def test_disconnected_graph_partition_is_the_largest_component():
    pats = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]], bool)
    pairs = _hamming_pairs(pats)
    vec, value, n_comp = _partition(DualGraph(5, pairs, np.ones(len(pairs))), FiedlerSolver.AUTO, "plain")
    assert n_comp == 2 and value == 0.0
    assert (vec > 0).tolist() in ([True, True, True, False, False], [False, False, False, True, True])


def test_authors_grid_graph_is_the_grid_patterns_and_scores_on_the_grid():
    net = _mlp([2, 12, 12, 2], 5)
    box = (-2, 2, -2, 2)
    rm = regions_2d(net, box=box)
    part = fiedler_partition(rm, variant=GraphVariant.AUTHORS_GRID, grid=60)
    pts = grid_points(box, 60)
    with torch.no_grad():
        bits = torch.cat([(net[0](torch.as_tensor(pts)) > 0), (net[:3](torch.as_tensor(pts)) > 0)], 1).numpy()
    np.testing.assert_array_equal(part.node_patterns[part.grid_node], bits)
    assert part.node_patterns.shape[0] == np.unique(bits, axis=0).shape[0] <= rm.n_regions
    assert (part.graph.weights == 1).all()
    d = (part.node_patterns[part.graph.pairs[:, 0]] != part.node_patterns[part.graph.pairs[:, 1]]).sum(1)
    assert (d == 1).all()
    _, pos = grid_decision(net, box, n=60)
    np.testing.assert_array_equal(part.grid_positive, pos)
    side = part.side[part.grid_node]
    assert fiedler_score(rm, part).kappa == pytest.approx(kappa_from_labels(side, pos), abs=1e-12)


def test_positive_area_and_scores():
    net = _mlp([2, 12, 12, 2], 5)
    with torch.no_grad():
        net[-1].bias.zero_()  # both classes in the box
    rm = regions_2d(net, box=(-2, 2, -2, 2))
    pos = positive_class_area(rm)
    assert (pos >= 0).all() and (pos <= rm.areas + 1e-15).all()
    s = np.linspace(-2, 2, 401)[:-1] + 0.005
    grid = torch.tensor(np.stack(np.meshgrid(s, s), -1).reshape(-1, 2))
    with torch.no_grad():
        out = net(grid)
    frac = float((out[:, 1] > out[:, 0]).double().mean())
    assert pos.sum() / 16 == pytest.approx(frac, abs=5e-3)
    part = fiedler_partition(rm)
    score = fiedler_score(rm, part)
    assert 0.5 <= score.agreement <= 1 and -1 <= score.kappa <= 1 and 0 <= score.iou <= 1
    assert 0.05 < score.positive_fraction < 0.95 and 0.5 <= score.balanced <= 1
    swapped = type(part)(-part.vector, ~part.side, part.value, part.n_components, part.graph, part.variant)
    other = fiedler_score(rm, swapped)
    for k in ("agreement", "kappa", "balanced", "iou", "smaller_side"):
        np.testing.assert_allclose(getattr(other, k), getattr(score, k), atol=1e-12)


def test_compare_variants_scores_every_variant_and_the_straight_cut():
    rm = regions_2d(_mlp([2, 10, 10, 2], 7), box=(-2, 2, -2, 2))
    cmp = compare_variants(rm, grid=50, n_directions=60)
    assert [v.variant for v in cmp.variants] == list(GraphVariant)
    for v in cmp.variants:
        assert v.score == fiedler_score(rm, fiedler_partition(rm, variant=v.variant, grid=50))
    assert cmp["length"].n_nodes == rm.n_regions
    row = cmp.as_row()
    assert row["authors_grid_kappa"] == cmp[GraphVariant.AUTHORS_GRID].score.kappa and "straight_kappa" in row


def test_bad_variant_is_one_clear_line():
    rm = regions_2d(_mlp([2, 4, 2], 0))
    with pytest.raises(ValueError, match="variant: expected one of .length-rw.*got .spectral."):
        fiedler_partition(rm, variant="spectral")
    with pytest.raises(ValueError, match="grid: expected an integer >= 2"):
        fiedler_partition(rm, variant="authors-grid", grid=1)
