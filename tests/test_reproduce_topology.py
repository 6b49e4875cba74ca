"""The topology runner's claim logic on tiny runs (the full quick run is `reluscope reproduce topology`)."""

import math

import pytest

from reluscope.experiments.topology import GrokConfig, RegressionConfig, run_grok, run_regression
from reluscope.regions import GraphVariant
from reluscope.reproduce import Verdict
from reluscope.reproduce import topology as R


@pytest.fixture(scope="module")
def tiny_grok():
    return run_grok(GrokConfig(n_bits=6, k=2, n_train=40, n_test=50, hidden=(6, 6), steps=4, n_checkpoints=2, grid=20,
                               straight_directions=8, n_orders=1, n_frames=2))


def test_boundary_and_grokking_claims(tiny_grok):
    b = R.boundary_claim(tiny_grok)
    k = b.values["kappa"]["length-rw"]
    expected = (Verdict.NOT_REPRODUCED if k < R.KAPPA_MODERATE
                else Verdict.REPRODUCED if k >= b.values["straight_kappa"] else Verdict.PARTLY)
    assert b.verdict is expected
    assert set(b.values["kappa"]) == {v.value for v in GraphVariant}
    g = R.grokking_claim(tiny_grok)
    if not tiny_grok.summary.grokked:
        assert g.verdict is Verdict.UNTESTABLE
    assert g.values["fit_step"] == tiny_grok.summary.fit_step


def test_regression_claims_and_thresholds():
    r = run_regression(RegressionConfig(n_train=50, hidden=(6, 6), steps=12, every=4, n_orders=1, batch_size=50))
    cells, spikes, betti = R.regression_claims(r)
    assert spikes.verdict in (Verdict.UNTESTABLE, Verdict.REPRODUCED, Verdict.NOT_REPRODUCED)
    if r.summary.spike_test.n_spikes < 3:
        assert spikes.verdict is Verdict.UNTESTABLE
    assert cells.values["spearman"] == r.summary.spearman_vs_loss["faces"]
    assert R._follows(0.6) is Verdict.REPRODUCED and R._follows(-0.6) is Verdict.PARTLY
    assert R._follows(0.2) is Verdict.NOT_REPRODUCED and R._follows(math.nan) is Verdict.UNTESTABLE
