"""A 2-D slice through three images of your data set: its exact linear regions, plotted.

`Plane.through_points` builds the plane through three inputs; `regions_2d` computes the exact
polyhedral complex the network cuts it into (with the plane given, the default box contains the
three images with a margin). Each region is coloured by a hash of its activation pattern; the
black line is the decision boundary between the first two images' classes.
"""

import reluscope
from reluscope.viz.regions import plot_regions
from _common import parse, save


def main():
    args = parse(__doc__, "plane.png")
    x, y = reluscope.load_digits("train")
    model = reluscope.mlp(64, [16, 16] if args.small else [64, 64], 10, seed=0)
    reluscope.train_classifier(model, x, y, epochs=2 if args.small else 20, lr=3e-3, seed=0)
    model.eval()

    a, b, c = x[y == 0][0], x[y == 1][0], x[y == 7][0]
    plane = reluscope.Plane.through_points(a, b, c)
    regions = reluscope.regions_2d(model, plane=plane)
    print(f"{regions.n_regions} linear regions on the plane through a 0, a 1 and a 7")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    plot_regions(regions, ax=ax, decision_boundary=False)
    anchors = plane.anchors.numpy()
    ax.scatter(anchors[:, 0], anchors[:, 1], c="black", s=30, zorder=3)
    for (s, t), label in zip(anchors, "017"):
        ax.annotate(label, (s, t), textcoords="offset points", xytext=(5, 5), fontsize=12)
    ax.set_title(f"{regions.n_regions} exact regions")
    save(fig, args.out)


if __name__ == "__main__":
    main()
