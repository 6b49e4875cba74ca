"""Claim logic of `reluscope reproduce hulls` on hand-made numbers (the full run is too slow for CI)."""

from reluscope.experiments.hulls import HullsSummary
from reluscope.reproduce import Verdict
from reluscope.reproduce.hulls import nch_claims, rge_claim


def _row(name, error, size=150):
    return {"name": name, "n": 2000, "size": size, "error": error, "seconds": 1.0}


def test_rge_claim_verdicts():
    good = rge_claim([_row("Center", 0.0), _row("Circles", 0.05), _row("Moons", 0.052), _row("Centers", 0.016)])
    assert good.verdict is Verdict.REPRODUCED and "Moons" in good.notes and "Circles" not in good.notes
    assert rge_claim([_row("Center", 0.07)]).verdict is Verdict.NOT_REPRODUCED
    assert rge_claim([_row("Center", 0.01, size=201)]).verdict is Verdict.NOT_REPRODUCED


def _summary(key, nch, net, mis):
    dataset, activation = key.split("/")
    return HullsSummary(dataset, activation, nch_test=nch, net_test=net, runs=1, chosen_layers=("1:ReLU",),
                        max_misinclusion_test=0.3, first_layer_misinclusion_test=mis, nch_beats_network=nch > net)


def test_nch_claim_verdicts():
    c2, c3 = nch_claims([_summary("mnist/relu", 0.97, 0.96, 0.0), _summary("fashion-mnist/relu", 0.85, 0.86, 0.02)], True)
    assert c2.verdict is Verdict.PARTLY and "validation" in c2.notes
    assert c3.verdict is Verdict.NOT_REPRODUCED
    c2, c3 = nch_claims([_summary("mnist/relu", 0.97, 0.96, 0.0)], False)
    assert c2.verdict is Verdict.REPRODUCED and c3.verdict is Verdict.REPRODUCED
    c2, _ = nch_claims([_summary("mnist/relu", 0.95, 0.96, 0.0)], True)
    assert c2.verdict is Verdict.NOT_REPRODUCED
