"""Tangent (gradient) similarity of a trained network.

`tangent_similarity` compares inputs through the gradients of the outputs with respect to every
parameter (per output, block metric: one rank-one block per parameter tensor). The figure is the
similarity matrix of test images sorted by class: a good similarity has bright diagonal blocks.
"""

import torch

import reluscope
from _common import parse, save


def main():
    args = parse(__doc__, "tangent.png")
    x, y = reluscope.load_digits("train")
    xt, yt = reluscope.load_digits("test")
    model = reluscope.mlp(64, [32, 32], 10, seed=0)
    reluscope.train_classifier(model, x, y, epochs=3 if args.small else 30, lr=3e-3, seed=0)
    model.eval()

    n = 60 if args.small else 300
    order = torch.argsort(yt[:n], stable=True)
    xs, ys = xt[:n][order], yt[:n][order]
    K = reluscope.tangent_similarity(model, xs)
    gap = reluscope.similarity_gap(K, ys)
    print(f"same-class minus cross-class mean similarity: {gap.gap:.4g}")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4))
    im = ax.imshow(K.numpy(), cmap="viridis")
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title("tangent similarity, test images by class")
    save(fig, args.out)


if __name__ == "__main__":
    main()
