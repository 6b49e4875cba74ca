"""Persistent homology of region-map filtrations, checked against gudhi; the training recorder."""

import itertools

import numpy as np
import pytest
import torch
import torch.nn as nn

from reluscope.regions import topology as T
from reluscope.regions import regions_2d
from reluscope.regions import GraphVariant
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
    assert T.cell_counts(rm).euler == 1
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
    assert s.beta0[-1] == 1 and s.beta1[-1] == 0
    assert s.max_beta0 >= 1 and len(s.t) == len(s.beta1)
    assert s.faces == rm.n_regions and s.max_beta1_per_face == s.max_beta1 / rm.n_regions
    assert s.as_row()["max_beta1_per_face"] == s.max_beta1_per_face
    sub = T.sublevel_summary(rm)
    assert sub.n_pairs0_per_face == sub.n_pairs0 / rm.n_regions and "faces" not in sub.as_row()


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
    np.testing.assert_allclose(p.lifetimes(0), [1.0], atol=1e-12)  # death - birth of the pairs diagram keeps
    assert p.lifetimes(1).shape == (0,)


def test_recorder_records_counts_scores_and_betti():
    net = _mlp([2, 8, 8, 2], 0).float()
    rec = TopologyRecorder(box=(-2, 2, -2, 2), every=2, n_orders=2, keep_frames=True, grid=40, straight_directions=20,
                           metrics=lambda m: {"marker": 1.0})
    state = type("S", (), {"loss": 0.5})()
    for step in range(4):
        rec(step, net, state)
    assert [r.step for r in rec.records] == [0, 2]
    r = rec.records[0]
    assert r.counts.euler == 1 and r.loss == 0.5 and r.metrics == {"marker": 1.0}
    assert [v.variant.value for v in r.fiedler.variants] == [v.value for v in GraphVariant]
    row = r.as_row()
    assert {"fiedler_length_rw_kappa", "fiedler_straight_kappa", "random_max_beta1_per_face", "sublevel_n_pairs0", "faces"} <= set(row)
    assert len(rec.frames) == 2


def test_recorder_measures_every_step_around_a_spike():
    # regression: spikes of about 5 steps fell between measurements taken every 50 steps
    net = _mlp([2, 4, 1], 0).float()
    rec = TopologyRecorder(box=(-2, 2, -2, 2), every=10, window=3, pair=True, binary=False, n_orders=1)
    losses = [1.0] * 30
    losses[17] = 5.0  # one spike at step 17
    for step, loss in enumerate(losses):
        with torch.no_grad():
            net[0].bias.add_(0.01)  # the weights move every step, so the kept ones matter
        rec(step, net, type("S", (), {"loss": loss})())
    steps = [r.step for r in rec.records]
    assert steps == sorted(set(steps))
    assert steps == [0, 1, 10, 11, 14, 15, 16, 17, 18, 19, 20, 21]
    spike = {r.step: r for r in rec.records}
    assert spike[17].spike and spike[14].in_spike_window and not spike[10].in_spike_window
    # the steps before the spike were measured on the weights of their own step
    ref = TopologyRecorder(box=(-2, 2, -2, 2), binary=False, n_orders=1)
    net2 = _mlp([2, 4, 1], 0).float()
    with torch.no_grad():
        for _ in range(16):  # step s is seen after s + 1 moves (the same float32 additions)
            net2[0].bias.add_(0.01)
    ref(15, net2, None)
    assert ref.records[0].counts == spike[15].counts and ref.records[0].sublevel == spike[15].sublevel


def test_bad_output_index():
    rm = regions_2d(_mlp([2, 3, 1], 0))
    with pytest.raises(ValueError, match="output"):
        T.sublevel_filtration(rm, output=3)


def test_experiments_run_small_and_write_outputs(tmp_path):
    import json

    from reluscope.experiments.topology import GrokConfig, RegressionConfig, grok_row, run_grok, run_regression, write_grok, write_regression

    cfg = GrokConfig(n_bits=6, k=2, n_train=40, n_test=50, hidden=(6, 6), steps=6, n_checkpoints=3, grid=30,
                     straight_directions=12, n_orders=1, n_frames=2)
    g = run_grok(cfg)
    assert [r.step for r in g.records] == [0, 1, 2, 6] and g.summary.measurements == 4
    assert {t.name for t in g.summary.tracks} == {v.value for v in GraphVariant} | {"straight-cut"}
    files = write_grok(g, tmp_path / "g")
    assert {"json", "csv", "frames", "kappa", "final"} <= set(files) and all(p.stat().st_size > 0 for p in files.values())
    assert json.loads(files["json"].read_text())["summary"]["fit_step"] == g.summary.fit_step
    row = grok_row(GrokConfig(n_bits=6, k=2, n_train=40, n_test=50, hidden=(4,), steps=2, n_checkpoints=1, grid=10,
                              straight_directions=8, n_orders=1, seed=3))
    assert row.seed == 3 and row.track("straight-cut").name == "straight-cut"
    assert [x["step"] for x in row.records] == [0, 1, 2]
    # over seeds as a sweep (in this process here): one row per seed, equal to the task's own row
    from reluscope.experiments.topology import run_grok_seeds, write_grok_seeds

    small = GrokConfig(n_bits=6, k=2, n_train=40, n_test=50, hidden=(4,), steps=2, n_checkpoints=1, grid=10,
                       straight_directions=8, n_orders=1)
    seeds_result = run_grok_seeds(small, [3, 4], out=tmp_path / "sweep", workers=0)
    rows = seeds_result.rows
    assert [r.seed for r in rows] == [3, 4]
    from dataclasses import replace

    from reluscope.io_utils import to_jsonable

    untimed = lambda r: to_jsonable(replace(r, summary=replace(r.summary, seconds=0.0)))  # noqa: E731
    assert untimed(rows[0]) == untimed(row)  # the sweep's row rebuilt as the task's GrokRow
    back = type(seeds_result).load(seeds_result.save(tmp_path / "seeds"))
    assert back.to_dict() == seeds_result.to_dict()
    seeds_files = write_grok_seeds(seeds_result, tmp_path / "s")
    assert seeds_files["csv"].read_text().count("\n") == 3 and seeds_files["figure"].stat().st_size > 0
    assert "straight_cut_kappa_final" in seeds_files["csv"].read_text().splitlines()[0]
    r = run_regression(RegressionConfig(n_train=50, hidden=(6, 6), steps=20, every=10, n_orders=1, batch_size=50))
    assert [x.step for x in r.records if not x.in_spike_window][:4] == [0, 1, 10, 11]
    assert r.records[-1].loss < r.records[0].loss
    assert r.summary.spike_test.n_ordinary >= 1
    files = write_regression(r, tmp_path / "r")
    assert "counts" in files and files["csv"].read_text().startswith("step,")
    with pytest.raises(ValueError, match="every"):
        RegressionConfig(every=0)
    with pytest.raises(ValueError, match="plane_points"):
        GrokConfig(plane_points=(0, 0, 1))


def test_spike_test_compares_one_step_changes():
    from reluscope.experiments.topology import spike_test
    from reluscope.regions.topology import CellCounts

    def rec(step, faces, spike=False, window=False):
        return type("R", (), {"step": step, "counts": CellCounts(0, 0, faces, 1), "spike": spike, "in_spike_window": window})()

    records = [rec(0, 100), rec(1, 101), rec(10, 100), rec(11, 100), rec(20, 100), rec(21, 102),
               rec(29, 100, window=True), rec(30, 150, spike=True, window=True), rec(31, 150, window=True)]
    t = spike_test(records, every=10)
    assert t.n_spikes == 1 and t.spike_changes == (0.5,)
    assert t.n_ordinary == 3 and t.ordinary_changes == pytest.approx((0.01, 0.0, 0.02))
    from scipy.stats import mannwhitneyu

    assert t.p_value == pytest.approx(mannwhitneyu([0.5], [0.01, 0.0, 0.02], alternative="two-sided").pvalue)
