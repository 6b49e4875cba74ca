"""Per-layer convex hulls of each class and the nearest-convex-hull classifier.

For each hidden layer of a trained MLP, the activations of each class span a convex hull. The
nearest-convex-hull (NCH) classifier predicts the class whose hull is nearest (an exact
simplex-constrained least squares per query). The figure compares its test accuracy per layer
with the network's; the layer to use would be chosen on a validation split, never on the test set.
"""

import torch

import reluscope
from _common import parse, save


def main():
    args = parse(__doc__, "hulls.png")
    x, y = reluscope.load_digits("train")
    xt, yt = reluscope.load_digits("test")
    if args.small:
        x, y, xt, yt = x[:300], y[:300], xt[:60], yt[:60]
    model = reluscope.mlp(64, [32, 32], 10, seed=0)
    reluscope.train_classifier(model, x, y, epochs=3 if args.small else 30, lr=3e-3, seed=0)
    model.eval()

    rows = []
    with torch.no_grad():
        for k, cut in enumerate((2, 4), start=1):  # after each ReLU of the flat nn.Sequential
            h, ht = model[:cut](x), model[:cut](xt)
            nch = reluscope.NearestConvexHull().fit(h, y)
            rows.append((f"hidden {k}", nch.score(ht, yt)))
    net = reluscope.accuracy(model, xt, yt)
    for name, acc in rows:
        print(f"{name}: NCH test accuracy {acc:.3f} (network {net:.3f})")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([r[0] for r in rows], [r[1] for r in rows], color="#4c72b0", label="nearest convex hull")
    ax.axhline(net, color="black", linestyle="--", label="network")
    ax.set_ylim(0, 1)
    ax.set_ylabel("test accuracy")
    ax.legend(loc="lower right")
    save(fig, args.out)


if __name__ == "__main__":
    main()
