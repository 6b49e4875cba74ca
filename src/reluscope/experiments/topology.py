"""Topology of linear regions over training (Bosca et al. 2025; docs/methods.md, section 3).

Two protocols, each a frozen config -> `run_*` -> frozen result -> `write_*(result, out)`:

`run_grok` (binary): the Fiedler split of the region map's dual graph, in every `GraphVariant`,
against the network's decision, tracked over a training run that groks, with the best straight
cut of the box as the baseline. The set-up (`GrokConfig`): sparse parity (inputs uniform in
{-1, 1}^24, label = parity of the first 3 coordinates), 400 training inputs, an MLP 24-128-128-2
whose initial weights are multiplied by `init_scale` = 2, full-batch AdamW (lr 1e-3, decoupled
weight decay 1.0). The regions are those of the 2-D plane through three training inputs. The
net memorises the training set within a few hundred steps and reaches test accuracy 0.9 an
order of magnitude later. Checkpoints are log-spaced in steps.

2-D tasks did not grok in our search (moons, circles, spirals, xor with 12 to 100 training points,
init scale 4 to 16, weight decay 0.1 to 1: test accuracy was already within a few points of its
final value when the training set was fitted; parity of a + b on an 11 x 11 lattice memorised
and stayed below chance), hence a task whose input *plane* is 2-D.

`run_regression`: a 2-D regression fitted with a large Adam step so the loss spikes. Regions
are measured every `every` steps and the step after it, and every step within `window` steps of
a spike (`TopologyRecorder`); the face-count change over one step at spike onsets is compared
with the change over one ordinary step by a two-sided Mann-Whitney U test.

`grok_row(config)` is one run as a row, the unit of a sweep over seeds (`run_grok_seeds`,
`write_grok_seeds`; `reluscope experiment topo-grok --seeds N --address ... --workers ...`).
"""


from __future__ import annotations

from ._topology import spearman
from .grokking import (
    GrokConfig, GrokFiles, GrokResult, GrokRow, GrokSeedsFiles, GrokSeedsResult, GrokSummary, VariantTrack, grok_row, run_grok, run_grok_seeds,
    sparse_parity, write_grok, write_grok_seeds,
)
from .regression import (
    RegressionConfig, RegressionFiles, RegressionResult, RegressionSummary, SpikeTest, regression_target, run_regression, spike_test,
    write_regression,
)

__all__ = [
    "GrokConfig", "GrokResult", "GrokRow", "GrokSummary", "VariantTrack", "run_grok", "grok_row", "write_grok",
    "GrokSeedsResult", "run_grok_seeds", "write_grok_seeds", "GrokFiles", "GrokSeedsFiles", "RegressionFiles",
    "RegressionConfig", "RegressionResult", "RegressionSummary", "SpikeTest", "run_regression", "write_regression",
    "sparse_parity", "regression_target", "spearman", "spike_test",
]
