"""The estimator protocol shared by NearestConvexHull and the similarity classifiers."""

import pytest

from reluscope.hull import NearestConvexHull
from reluscope.tangent import LandmarkClassifier, LinearSimilarityClassifier


@pytest.mark.parametrize("cls, given", [(NearestConvexHull, {"mode": "rge", "tol": 1e-6}),
                                        (LinearSimilarityClassifier, {"loss": "ridge", "metric": "sparse", "alpha": 0.5}),
                                        (LandmarkClassifier, {"threshold": 2.0})])
def test_params_round_trip_through_sklearn_clone(cls, given):
    est = cls(**given)
    params = est.get_params()
    assert all(params[k] is v for k, v in given.items())  # stored unchanged (not coerced) under their own names
    base = pytest.importorskip("sklearn.base")
    twin = base.clone(est)
    assert type(twin) is type(est) and twin.get_params() == params
    assert repr(est).startswith(type(est).__name__ + "(") and "=" in repr(est)


def test_set_params_refuses_unknown_names():
    clf = LinearSimilarityClassifier()
    assert clf.set_params(alpha=0.1, metric="full").alpha == 0.1 and clf.metric == "full"
    assert set(clf.get_params()) >= {"loss", "alpha", "max_iter", "metric", "model", "memory_budget"}
    with pytest.raises(ValueError, match="eps: not a parameter of LinearSimilarityClassifier"):
        clf.set_params(eps=1)
