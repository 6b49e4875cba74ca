"""Persistent homology of region-map filtrations, checked against gudhi; the training recorder."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from reluscope.regions import topology as T
from reluscope.regions import regions_2d
from reluscope.regions.recorder import TopologyRecorder

gudhi = pytest.importorskip("gudhi")


def _mlp(widths, seed):
    torch.manual_seed(seed)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).double()


def _positive(intervals):
    I = np.asarray(intervals, dtype=float).reshape(-1, 2)
    I = I[np.isfinite(I[:, 1]) & (I[:, 1] > I[:, 0])]
    return sorted(map(tuple, np.round(I, 9)))


def _gudhi_of_region_filtration(rm, filt):
    """gudhi on the region complex with each polygon fan-triangulated from a new centre vertex
    (entering with its face): the same persistent homology, computed independently."""
    val = {(int(d), int(s)): v for d, v, s in zip(filt.dims, filt.values, filt.source)}
    st = gudhi.SimplexTree()
    for v in range(rm.n_vertices):
        st.insert([v], val[(0, v)])
    for e, (a, b) in enumerate(rm.edges):
        st.insert([int(a), int(b)], val[(1, e)])
    for f in range(rm.n_regions):
        ring = rm.face_vertices[rm.face_offsets[f]:rm.face_offsets[f + 1]]
        centre = rm.n_vertices + f
        for i in range(len(ring)):
            st.insert([centre, int(ring[i]), int(ring[(i + 1) % len(ring)])], val[(2, f)])
    st.compute_persistence()
    return {d: _positive(st.persistence_intervals_in_dimension(d)) for d in (0, 1)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_region_filtrations_match_gudhi(seed):
    rm = regions_2d(_mlp([2, 8, 8, 1], seed), box=(-2, 2, -2, 2))
    assert T.cell_counts(rm)["euler"] == 1
    for filt in (T.random_filtration(rm, seed=seed), T.sublevel_filtration(rm)):
        assert (np.diff(filt.values) >= 0).all()
        p = T.persistence(filt)
        ref = _gudhi_of_region_filtration(rm, filt)
        for d in (0, 1):
            assert _positive(p.diagram(d)) == ref[d]
        # the whole box is contractible: one essential class, in dimension 0
        assert p.dims[np.isinf(p.deaths)].tolist() == [0]


def test_reduction_matches_gudhi_on_random_simplicial_complexes():
    rng = np.random.default_rng(0)
    for _ in range(5):
        n = 9
        tris = [t for t in itertools.combinations(range(n), 3) if rng.random() < 0.15]
        st = gudhi.SimplexTree()
        for t in tris:
            st.insert(list(t))
        for v in range(n):
            st.insert([v])
        # random filtration values made monotone (a simplex no earlier than its faces)
        for simplex, _ in list(st.get_simplices()):
            st.assign_filtration(simplex, float(rng.integers(0, 20)))
        st.make_filtration_non_decreasing()
        simplices = sorted(st.get_filtration(), key=lambda sv: (sv[1], len(sv[0])))
        index = {tuple(s): i for i, (s, _) in enumerate(simplices)}
        boundary = [np.array(sorted(index[tuple(f)] for f in itertools.combinations(s, len(s) - 1)) if len(s) > 1 else [], dtype=np.int64) for s, _ in simplices]
        dims = np.array([len(s) - 1 for s, _ in simplices])
        values = np.array([v for _, v in simplices])
        p = T.persistence(T.Filtration(dims, values, boundary, np.arange(len(dims))))
        st.compute_persistence()
        for d in (0, 1, 2):
            assert _positive(p.diagram(d)) == _positive(st.persistence_intervals_in_dimension(d))
            ess = int((np.isinf(p.deaths) & (p.dims == d)).sum())
            assert ess == st.betti_numbers()[d] if d < len(st.betti_numbers()) else ess == 0


def test_random_summary_curves_end_contractible():
    rm = regions_2d(_mlp([2, 6, 6, 1], 3), box=(-2, 2, -2, 2))
    s = T.random_summary(rm, n_orders=3)
    assert s["beta0"][-1] == 1 and s["beta1"][-1] == 0
    assert s["max_beta0"] >= 1 and len(s["t"]) == len(s["beta1"])


def test_sublevel_filtration_of_a_two_well_function_has_one_finite_class():
    # f(x, y) = min(|x - 1|, |x + 1|) + |y| (two minima): one finite H0 pair born at 0, dying at 1
    l1 = nn.Linear(2, 6).double()
    with torch.no_grad():
        l1.weight.copy_(torch.tensor([[1.0, 0], [-1, 0], [1, 0], [-1, 0], [0, 1], [0, -1]]))
        l1.bias.copy_(torch.tensor([-1.0, 1, 1, -1, 0, 0]))
    # |x-1| = r0 + r1, |x+1| = r2 + r3, min(a, b) = a - relu(a - b): use a second layer
    l2 = nn.Linear(6, 3).double()
    with torch.no_grad():
        l2.weight.copy_(torch.tensor([[1.0, 1, 0, 0, 0, 0], [1, 1, -1, -1, 0, 0], [0, 0, 0, 0, 1, 1]]))
        l2.bias.zero_()
    l3 = nn.Linear(3, 1).double()
    with torch.no_grad():
        l3.weight.copy_(torch.tensor([[1.0, -1, 1]]))
        l3.bias.zero_()
    # hidden layer 2 must be >= 0 where used: |x-1| >= 0 and |y| >= 0 pass ReLU unchanged
    net = nn.Sequential(l1, nn.ReLU(), l2, nn.ReLU(), l3)
    rm = regions_2d(net, box=(-2, 2, -1, 1))
    with torch.no_grad():
        xs = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0]], dtype=torch.float64)
        np.testing.assert_allclose(net(xs).ravel().numpy(), [0, 0, 1])
    p = T.persistence(T.sublevel_filtration(rm))
    np.testing.assert_allclose(p.diagram(0), [[0.0, 1.0]], atol=1e-12)
    assert p.diagram(1).shape == (0, 2)


def test_recorder_records_counts_scores_and_betti():
    net = _mlp([2, 8, 8, 2], 0).float()
    rec = TopologyRecorder(box=(-2, 2, -2, 2), every=2, n_orders=2, keep_frames=True)
    state = type("S", (), {"loss": 0.5})()
    for step in range(4):
        rec(step, net, state)
    assert [r["step"] for r in rec.records] == [0, 2]
    r = rec.records[0]
    assert r["euler"] == 1 and r["loss"] == 0.5
    assert 0.5 <= r["fiedler_agreement"] <= 1
    assert {"random_max_beta1", "sublevel_n_pairs0", "faces"} <= set(r)
    assert len(rec.frames) == 2


def test_bad_output_index():
    rm = regions_2d(_mlp([2, 3, 1], 0))
    with pytest.raises(ValueError, match="output"):
        T.sublevel_filtration(rm, output=3)


def test_experiments_run_small_and_write_outputs(tmp_path):
    from reluscope.experiments.topology import (
        TopoBinaryConfig, TopoRegressionConfig, run_topo_binary, run_topo_regression, write_topo_outputs,
    )

    b = run_topo_binary(TopoBinaryConfig(n_train=60, n_val=100, hidden=(6, 6), epochs=4, every=2, batch_size=30, n_orders=1, n_frames=2))
    assert b.summary["measurements"] == len(b.records) >= 2
    assert all(0.5 <= r["fiedler_agreement"] <= 1 and r["euler"] == 1 for r in b.records)
    files = write_topo_outputs(b, tmp_path, name="b")
    assert {"json", "csv", "frames", "fiedler", "final"} <= set(files) and all(p.stat().st_size > 0 for p in files.values())
    r = run_topo_regression(TopoRegressionConfig(n_train=50, hidden=(6, 6), steps=20, every=10, n_orders=1, batch_size=50))
    assert [x["step"] for x in r.records] == [0, 10, 20]
    assert r.records[-1]["loss"] < r.records[0]["loss"]
    files = write_topo_outputs(r, tmp_path, name="r")
    assert "counts" in files and files["csv"].read_text().startswith("step,")
    with pytest.raises(ValueError, match="every"):
        TopoRegressionConfig(every=0)
