"""Space folding between two classes: chi on segments between digits 1 and 4.

`global_folding` draws pairs (one image of each class), traverses each segment exactly, and
aggregates chi (the range metric: 1 - farthest Hamming distance from the start / total Hamming
length of the walk). The figure is the distribution of chi over the pairs, exact against the
papers' 11-point grid.
"""

import reluscope
from reluscope.viz.folding import plot_folding_histogram
from _common import parse, save


def main():
    args = parse(__doc__, "folding.png")
    x, y = reluscope.load_digits("train")
    model = reluscope.mlp(64, [32, 32] if args.small else [64, 64, 64], 10, seed=0)
    reluscope.train_classifier(model, x, y, epochs=2 if args.small else 20, lr=3e-3, seed=0)
    model.eval()

    n = 20 if args.small else 300
    exact = reluscope.global_folding(model, x, y, classes=(1, 4), budget=n, seed=0)
    grid = reluscope.global_folding(model, x, y, classes=(1, 4), budget=n, seed=0, n_points=11)
    print(f"Phi (median of positive chi): exact {exact.value:.3f}, 11-point grid {grid.value:.3f}")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    plot_folding_histogram(exact.chi, ax=ax, label="exact")
    plot_folding_histogram(grid.chi, ax=ax, label="11 samples")
    ax.set_title(f"chi on {n} segments between digits 1 and 4")
    save(fig, args.out)


if __name__ == "__main__":
    main()
