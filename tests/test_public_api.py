"""The public surface: every exported name resolves, and the stable entry points are there."""

import reluscope

STABLE = (
    "activation_patterns", "traverse", "folding_measure", "path_folding", "cantornet",
    "regions_2d", "Plane", "fiedler_partition", "hull_distance", "revised_greedy_expansion",
    "tangent_features", "tangent_similarity",
)


def test_every_export_resolves():
    missing = [name for name in reluscope.__all__ if not hasattr(reluscope, name)]
    assert missing == []


def test_stable_entry_points_are_exported():
    assert set(STABLE) <= set(reluscope.__all__)
    assert all(callable(getattr(reluscope, name)) for name in STABLE)


def test_no_submodule_shadows_an_export():
    import pkgutil

    modules = {m.name for m in pkgutil.iter_modules(reluscope.__path__)}
    assert modules.isdisjoint(reluscope.__all__)
