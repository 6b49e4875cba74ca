"""Report section: activation-pattern statistics and exact region sequences along segments.

For the MNIST MLP and the moons MLP: how many units each layer has, how often they are active,
dead units, and how many distinct patterns (linear regions) the data hit; then the exact sequence
of regions along straight segments between test inputs (MNIST digit 1 -> digit 4, moons class 0 ->
class 1), with the Hamming distance to the start pattern plotted against t. Every piece found is
checked at its midpoint against the network's pattern there, and the exact count is compared with
what 11 equally spaced samples (the folding papers' protocol) would see.
"""

from __future__ import annotations

import torch

from ..network import to_network
from ..patterns import activation_patterns
from ..patterns.summary import summarize_patterns, summarize_traversals
from ..traversal import traverse_many
from ..viz import report_figure
from ..viz.patterns import plot_hamming_along_path, plot_unit_activity
from .base import DemoContext, Section, figure_html, table_html

__all__ = ["section"]

_PAPER_SAMPLES = 11


def _pairs(x, y, a: int, b: int, n: int, gen: torch.Generator):
    ia = torch.nonzero(y == a).flatten()
    ib = torch.nonzero(y == b).flatten()
    ia = ia[torch.randperm(len(ia), generator=gen)[:n]]
    ib = ib[torch.randperm(len(ib), generator=gen)[:n]]
    return x[ia].double(), x[ib].double()


def _check_midpoints(model, x0, x1, traversals) -> int:
    """Number of pieces whose pattern differs from the network's pattern at the piece midpoint."""

    bad = 0
    for a, b, tr in zip(x0, x1, traversals):
        mid = tr.midpoints.to(a.dtype).unsqueeze(1)
        points = a.unsqueeze(0) + mid * (b - a).unsqueeze(0)
        bad += int((activation_patterns(model, points) != tr.patterns).any(1).sum())
    return bad


def _sampled_regions(model, x0, x1, n: int) -> list[int]:
    """Regions seen by n equally spaced samples (consecutive duplicates merged), per segment."""

    t = torch.linspace(0, 1, n, dtype=x0.dtype).unsqueeze(1)
    counts = []
    for a, b in zip(x0, x1):
        p = activation_patterns(model, a.unsqueeze(0) + t * (b - a).unsqueeze(0))
        counts.append(1 + int((p[1:] != p[:-1]).any(1).sum()))
    return counts


def _network_block(name, model, x, x0, x1):

    net = to_network(model).with_input_shape(x.shape[1:])
    layout = net.unit_layout()
    bits = activation_patterns(model, x)
    stats = summarize_patterns(bits, layout)
    traversals = traverse_many(model, x0, x1)
    walk = summarize_traversals(traversals)
    sampled = _sampled_regions(model, x0, x1, _PAPER_SAMPLES)
    return {
        "bits": bits, "layout": layout, "stats": stats, "traversals": traversals, "walk": walk,
        "midpoint_mismatches": _check_midpoints(model, x0, x1, traversals),
        "pieces": sum(t.n_pieces for t in traversals),
        "sampled_regions_mean": sum(sampled) / len(sampled), "name": name,
    }


def _figures(blocks, toy_x, toy_y, toy_x0, toy_x1) -> str:

    parts = []
    fig, axes = report_figure(1, 2, figsize=(11, 3.2))
    for ax, block in zip(axes, blocks):
        plot_unit_activity(block["bits"], block["layout"], ax=ax)
        ax.set_title(f"{block['name']}: unit activity on {block['stats'].n_inputs} inputs")
    parts.append(figure_html(fig, caption="Share of inputs on which each unit is active, sorted within each layer; red ticks: dead units."))

    fig, axes = report_figure(1, 2, figsize=(11, 3.6))
    for ax, block in zip(axes, blocks):
        for k, tr in enumerate(block["traversals"]):
            plot_hamming_along_path(tr, ax=ax, color=f"C{k % 10}", alpha=0.7, linewidth=1.0)
        ax.set_title(f"{block['name']}: {len(block['traversals'])} segments, exact traversal")
    parts.append(figure_html(fig, caption="Hamming distance to the start pattern along each segment (one step per region crossed)."))

    fig, axes = report_figure(1, 2, figsize=(11, 3.6))
    counts = [[t.n_pieces for t in b["traversals"]] for b in blocks]
    for ax, block, c in zip(axes, blocks, counts):
        ax.hist(c, bins=min(20, max(3, len(set(c)))), color="C0")
        ax.set_xlabel("regions crossed by a segment")
        ax.set_ylabel("segments")
        ax.set_title(block["name"])
    parts.append(figure_html(fig, caption="Number of linear regions crossed per segment."))

    fig, ax = report_figure(figsize=(5, 4))
    ax.scatter(toy_x[:, 0], toy_x[:, 1], c=toy_y, s=5, cmap="coolwarm", alpha=0.5)
    for a, b in zip(toy_x0, toy_x1):
        ax.plot([a[0], b[0]], [a[1], b[1]], color="k", linewidth=0.8)
    ax.set_title("moons: the traversed segments")
    ax.set_aspect("equal")
    parts.append(figure_html(fig, caption="Moons training data and the segments traversed (class 0 -> class 1)."))
    return "".join(parts)


def section(ctx: DemoContext) -> Section:
    n_mnist = 8 if ctx.quick else 20
    n_toy = 5 if ctx.quick else 10
    x_test, y_test = ctx.mnist_test
    toy_x, toy_y = ctx.toy_data
    m0, m1 = _pairs(x_test, y_test, 1, 4, n_mnist, ctx.generator("foundation/mnist"))
    t0, t1 = _pairs(toy_x, toy_y, 0, 1, n_toy, ctx.generator("foundation/moons"))
    blocks = [
        _network_block("MNIST MLP 784-64-64-10", ctx.mnist_model, x_test, m0, m1),
        _network_block("moons MLP 2-16-16-2", ctx.toy_model, toy_x, t0, t1),
    ]

    rows, walk_rows, summary = [], [], {}
    for key, block in zip(("mnist", "moons"), blocks):
        s, w = block["stats"], block["walk"]
        rows.append({
            "network": block["name"], "inputs": s.n_inputs, "units": s.n_units,
            "distinct patterns": s.distinct_patterns,
            "active share per layer": ", ".join(f"{layer.active_fraction:.3f}" for layer in s.layers),
            "dead units": s.dead_units, "always-active units": s.always_active_units,
        })
        walk_rows.append({
            "network": block["name"], "segments": w.n_segments, "regions mean": w.regions_mean,
            "median": w.regions_median, "min": w.regions_min, "max": w.regions_max,
            f"{_PAPER_SAMPLES} samples see (mean)": block["sampled_regions_mean"],
            "final Hamming (mean)": w.final_hamming_mean, "max Hamming (mean)": w.max_hamming_mean,
            "bit flips (mean)": w.total_flips_mean, "segments with bits flipping back": w.segments_with_returning_bits,
            "pieces failing midpoint check": f"{block['midpoint_mismatches']} / {block['pieces']}",
        })
        summary[key] = {
            "patterns": s.to_dict(), "traversal": w.to_dict(),
            "regions_seen_by_11_samples_mean": block["sampled_regions_mean"],
            "midpoint_mismatches": block["midpoint_mismatches"], "pieces": block["pieces"],
        }
    body = (
        "<p>Activation patterns (one bit per hidden ReLU unit, bit = z &gt; 0) of the demo networks on "
        "their data: the MNIST test set (10,000 images) and the 1,000 moons training points.</p>"
        + table_html(rows)
        + f"<p>Exact traversal of straight segments between inputs of two classes: {n_mnist} MNIST test pairs "
        f"digit 1 &rarr; digit 4 and {n_toy} moons pairs class 0 &rarr; class 1 "
        "(<code>reluscope.traverse_many</code>, float64). Every piece is checked at its midpoint "
        f"against the network's own pattern there; the column &ldquo;{_PAPER_SAMPLES} samples see&rdquo; "
        "counts the regions that equally spaced samples (the folding papers' protocol) would notice.</p>"
        + table_html(walk_rows)
        + _figures(blocks, toy_x, toy_y, t0, t1)
        + "<p>Reproduce from the command line: <code>reluscope traverse out/models/mnist-mlp --data mnist "
        "--start 2 --end 4 --out traverse.json</code> (test images 2 and 4 are a 1 and a 4).</p>"
    )
    return Section(title="Activation patterns and exact traversal", html=body, summary=summary)
