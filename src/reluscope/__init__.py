"""reluscope: see and measure the geometry of piecewise-linear neural networks.

Public names are re-exported here explicitly and loaded lazily, so `import reluscope` stays light
(no matplotlib, no typer) and each capability lives in the module named after its idea.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it (one line each; keep sorted by module)
_EXPORTS = {
    # network description
    "Network": "reluscope.network",
    "SUPPORTED_MODULES": "reluscope.network",
    "to_network": "reluscope.network",
    "save_model": "reluscope.network.io",
    "load_model": "reluscope.network.io",
    # activation patterns
    "activation_patterns": "reluscope.patterns",
    "pattern_layout": "reluscope.patterns",
    "activations": "reluscope.network.named",
    "Activations": "reluscope.network.named",
    "pack_patterns": "reluscope.patterns",
    "unpack_patterns": "reluscope.patterns",
    "PackedPatterns": "reluscope.patterns",
    "hamming": "reluscope.patterns",
    "pairwise_hamming": "reluscope.patterns",
    # exact traversal of segments
    "traverse": "reluscope.traversal",
    "traverse_many": "reluscope.traversal",
    "Traversal": "reluscope.traversal",
    "Traversals": "reluscope.traversal",
    "traverse_pairs": "reluscope.traversal",
    "traverse_bisection": "reluscope.traversal",
    "Precision": "reluscope.traversal",
    "PrecisionWarning": "reluscope.traversal",
    "HammingMethod": "reluscope.patterns",
    # convex hulls in activation space
    "hull_distance": "reluscope.hull",
    "hull_distance_bounds": "reluscope.hull",
    "HullDistance": "reluscope.hull",
    "in_hull": "reluscope.hull",
    "revised_greedy_expansion": "reluscope.hull",
    "RGEResult": "reluscope.hull",
    "kcha_scores": "reluscope.hull",
    "NearestConvexHull": "reluscope.hull",
    "HullMode": "reluscope.hull",
    "overfitting_report": "reluscope.hull",
    "OverfittingRow": "reluscope.hull",
    "class_geometry": "reluscope.hull",
    "ClassGeometry": "reluscope.hull",
    "crucial_share": "reluscope.hull",
    "misinclusion": "reluscope.hull",
    "pairwise_distance_histogram": "reluscope.hull",
    # tangent (gradient) similarity
    "tangent_features": "reluscope.tangent",
    "tangent_scores": "reluscope.tangent",
    "tangent_similarity": "reluscope.tangent",
    "Metric": "reluscope.tangent",
    "Normalization": "reluscope.tangent",
    "ScoreMethod": "reluscope.tangent",
    "hidden_features": "reluscope.tangent",
    "sign_agreement_mask": "reluscope.tangent",
    "sign_agreement_scores": "reluscope.tangent",
    "SignAgreementMask": "reluscope.tangent",
    "empirical_tangent_kernel": "reluscope.tangent",
    "similarity_gap": "reluscope.tangent",
    "per_input_gap": "reluscope.tangent",
    "goodness_curve": "reluscope.tangent",
    "SimilarityGap": "reluscope.tangent",
    "GoodnessCurve": "reluscope.tangent",
    "LandmarkClassifier": "reluscope.tangent",
    "LinearSimilarityClassifier": "reluscope.tangent",
    # data, training, summaries, demo
    "load_state_dict_file": "reluscope.network.io",
    "load_mnist": "reluscope.data",
    "load_fashion_mnist": "reluscope.data",
    "load_digits": "reluscope.data",
    "make_toy": "reluscope.data",
    "load_hull_toy": "reluscope.data",
    "mlp": "reluscope.train",
    "train_classifier": "reluscope.train",
    "TrainResult": "reluscope.train",
    "accuracy": "reluscope.train",
    "summarize_patterns": "reluscope.patterns",
    "summarize_traversals": "reluscope.patterns",
    "hamming_to_start": "reluscope.patterns",
    "run_demo": "reluscope.report",
    # space folding and CantorNet
    "folding_measure": "reluscope.folding",
    "folding_profile": "reluscope.folding",
    "FoldingProfile": "reluscope.folding",
    "folding_measures": "reluscope.folding",
    "interaction_effect": "reluscope.folding",
    "interaction_effects": "reluscope.folding",
    "path_folding": "reluscope.folding",
    "path_folding_many": "reluscope.folding",
    "path_chi": "reluscope.folding",
    "PathFolding": "reluscope.folding",
    "symmetric_folding": "reluscope.folding",
    "symmetric_folding_many": "reluscope.folding",
    "global_folding": "reluscope.folding",
    "GlobalFolding": "reluscope.folding",
    "PairStrategy": "reluscope.folding",
    "Aggregator": "reluscope.folding",
    "aggregate_folding": "reluscope.folding",
    "draw_pairs": "reluscope.folding",
    "soft_folding": "reluscope.folding",
    "folding_penalty": "reluscope.folding",
    "folding_loss": "reluscope.folding",
    "cantornet": "reluscope.folding.cantor",
    "cantor_region": "reluscope.folding.cantor",
    "CantorRegion": "reluscope.folding.cantor",
    "cantornet_folding": "reluscope.folding.cantor",
    "cantornet_spec": "reluscope.folding.cantor",
    "cantor_boundary_vertices": "reluscope.folding.cantor",
    "rational_walk": "reluscope.folding.cantor",
    # linear regions of 2-D slices, dual graph, topology
    "regions_2d": "reluscope.regions",
    "RegionMap": "reluscope.regions",
    "Plane": "reluscope.regions",
    "RegionBudgetError": "reluscope.regions",
    "dual_graph": "reluscope.regions",
    "DualGraph": "reluscope.regions",
    "fiedler_partition": "reluscope.regions",
    "FiedlerPartition": "reluscope.regions",
    "FiedlerSolver": "reluscope.regions",
    "fiedler_score": "reluscope.regions",
    "positive_class_area": "reluscope.regions",
    "GraphVariant": "reluscope.regions",
    "compare_variants": "reluscope.regions",
    "FiedlerComparison": "reluscope.regions",
    "SplitScore": "reluscope.regions",
    "score_split": "reluscope.regions",
    "best_straight_cut": "reluscope.regions",
    "StraightCut": "reluscope.regions",
    "TopologyRecorder": "reluscope.regions",
    "cell_counts": "reluscope.regions.topology",
    "persistence": "reluscope.regions.topology",
    "random_filtration": "reluscope.regions.topology",
    "sublevel_filtration": "reluscope.regions.topology",
    "random_summary": "reluscope.regions.topology",
    "sublevel_summary": "reluscope.regions.topology",
    "betti_curve": "reluscope.regions.topology",
    # sweeps on Ray (the optional extra reluscope[sweep])
    "run_sweep": "reluscope.sweep",
    "read_sweep": "reluscope.sweep",
    "SweepSummary": "reluscope.sweep",
    "TaskResources": "reluscope.sweep",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


# A module must never share a name with an export: once imported, the submodule attribute would
# shadow the lazily loaded function (the reason CantorNet lives in `reluscope.folding.cantor`).


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reluscope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
