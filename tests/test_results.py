"""Results leave Python: every result dataclass has to_dict(), save(path) and load(path), and the
table-shaped ones to_frame(). Files are one .npz with a JSON manifest, never pickled."""

import dataclasses
import json
import zipfile

import numpy as np
import pytest
import torch

from reluscope.folding import folding_profile, global_folding, path_folding
from reluscope.folding.cantor import cantornet_folding
from reluscope.hull import class_geometry, hull_distance_bounds, overfitting_report, revised_greedy_expansion
from reluscope.patterns import activation_patterns, pack_patterns, summarize_patterns, summarize_traversals, walk_distances
from reluscope.regions import dual_graph, fiedler_partition, regions_2d, summarize_regions
from reluscope.regions.topology import persistence, random_filtration
from reluscope.results import Result, load_result
from reluscope.tangent import goodness_curve, similarity_gap
from reluscope.traversal import traverse, traverse_many
from reluscope.train import mlp


def _same(a, b):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a.cpu(), b)
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b)
        for f in dataclasses.fields(a):
            _same(getattr(a, f.name), getattr(b, f.name))
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _same(x, y)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b and type(a) is type(b)


@pytest.fixture(scope="module")
def results():
    torch.manual_seed(0)
    model = mlp(2, [6, 6], 2, seed=0).double().eval()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 2, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long()
    bits = activation_patterns(model, x)
    rm = regions_2d(model, box=(-2, 2, -2, 2))
    tr = traverse(model, x[0], x[1])
    a = x.numpy()
    out = {
        "Traversal": tr,
        "Traversals": traverse_many(model, x[:3], x[3:6]),
        "TraversalSummary": summarize_traversals(traverse_many(model, x[:3], x[3:6])),
        "PatternSummary": summarize_patterns(bits),
        "PackedPatterns": pack_patterns(bits),
        "WalkDistances": walk_distances(tr.patterns),
        "PathFolding": path_folding(model, x[0], x[1]),
        "FoldingProfile": folding_profile(tr.patterns),
        "GlobalFolding": global_folding(model, x, y, classes=(0, 1), budget=5),
        "CantorFolding": cantornet_folding(ks=(1,), representations=("A",))[0],
        "RegionMap": rm,
        "DualGraph": dual_graph(rm),
        "RegionSummary": summarize_regions(rm, topology=True),
        "FiedlerPartition": fiedler_partition(rm),
        "Persistence": persistence(random_filtration(rm, seed=0)),
        "HullDistance": hull_distance_bounds(a[:10], a[10:14]),
        "RGEResult": revised_greedy_expansion(a, inside_distance=0.1, stop=0.2, max_size=12),
        "ClassGeometry": class_geometry(a, y.numpy()),
        "OverfittingReport": overfitting_report([("input", a, a)], y.numpy(), y.numpy(), net_train=1.0, net_test=1.0),
        "SimilarityGap": similarity_gap(x @ x.T, y),
        "GoodnessCurve": goodness_curve(x @ x.T, y, n_gammas=5),
    }
    return out


NAMES = ["Traversal", "Traversals", "TraversalSummary", "PatternSummary", "PackedPatterns", "WalkDistances", "PathFolding",
         "FoldingProfile", "GlobalFolding", "CantorFolding", "RegionMap", "DualGraph", "RegionSummary", "FiedlerPartition",
         "Persistence", "HullDistance", "RGEResult", "ClassGeometry", "OverfittingReport", "SimilarityGap",
         "GoodnessCurve"]


@pytest.mark.parametrize("name", NAMES)
def test_every_result_round_trips_through_a_file_and_json(results, name, tmp_path):
    res = results[name]
    assert isinstance(res, Result) and type(res).__name__ == name
    path = res.save(tmp_path / name)
    assert path.suffix == ".npz" and path.is_file()
    back = type(res).load(path)
    _same(res, back)
    assert load_result(path).__class__ is type(res)
    text = json.dumps(res.to_dict(), allow_nan=False)  # strict JSON: NaN/inf become null
    assert json.loads(text) == back.to_dict()
    with np.load(path, allow_pickle=False) as data:  # readable without reluscope, no pickle anywhere
        meta = json.loads(data["__result__"].tobytes().decode())
        assert meta["format"] == 1 and all(data[k].dtype != object for k in data.files)


def test_loading_refuses_other_kinds_and_foreign_files(results, tmp_path):
    path = results["SimilarityGap"].save(tmp_path / "gap.npz")
    with pytest.raises(ValueError, match="holds a SimilarityGap, not a GoodnessCurve"):
        type(results["GoodnessCurve"]).load(path)
    np.savez(tmp_path / "plain.npz", a=np.zeros(3))
    with pytest.raises(ValueError, match="not a reluscope result file"):
        load_result(tmp_path / "plain.npz")
    meta = {"format": 1, "value": {"__dataclass__": "os:DirEntry", "fields": {}}}
    np.savez(tmp_path / "evil.npz", __result__=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    with pytest.raises(ValueError, match="not a reluscope class"):
        load_result(tmp_path / "evil.npz")
    with pytest.raises(FileNotFoundError):
        load_result(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(path)


def test_results_holding_a_model_say_how_to_save_it(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Holder(Result):
        model: torch.nn.Module

    with pytest.raises(TypeError, match="save_model"):
        Holder(torch.nn.Linear(2, 2)).save(tmp_path / "h")


def test_table_shaped_results_become_frames(results):
    pytest.importorskip("pandas")
    layers = results["PatternSummary"].to_frame()
    assert list(layers.columns) == ["name", "units", "active_fraction", "dead_units", "always_active_units"]
    pairs = results["GlobalFolding"].to_frame()
    assert len(pairs) == len(results["GlobalFolding"].chi) and list(pairs.columns) == ["i0", "i1", "chi", "n_patterns"]
    np.testing.assert_array_equal(pairs["chi"].to_numpy(), results["GlobalFolding"].chi)
    report = results["OverfittingReport"].to_frame()
    assert report["layer"].tolist() == ["input"] and "nch_test" in report
    assert list(results["GoodnessCurve"].to_frame().columns) == ["gamma", "eps"]
    assert list(results["Persistence"].to_frame().columns) == ["dim", "birth", "death"]
    with pytest.raises(TypeError, match="not table-shaped"):
        results["SimilarityGap"].to_frame()
