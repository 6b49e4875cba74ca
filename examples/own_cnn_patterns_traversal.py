"""Your own CNN: activation patterns of a batch, and the exact regions along a segment.

A small convolutional net on sklearn's 8x8 digits (bundled, no download). `activation_patterns`
gives one bit per unit (ReLU on, max-pool argmax); `traverse` walks the straight segment between
two images and returns every linear region it crosses, in order, with exact breakpoints. The
figure shows the Hamming distance to the start along the segment, against 11 equally spaced
samples (the papers' grid), which miss most of the regions. The samples sit above the exact
curve: an image itself lies on region boundaries (its zero pixels make max-pool ties), so the
pattern at t = 0 differs from the open region next to it, which is what the exact walk starts
from.
"""

import torch
from torch import nn

import reluscope
from reluscope.viz import plot_hamming_along_path
from _common import parse, save


class SmallCNN(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * 16, 10))

    def forward(self, x):
        return self.head(self.features(x))


def main():
    args = parse(__doc__, "own_cnn.png")
    x, y = reluscope.load_digits("train")
    x = x.reshape(-1, 1, 8, 8)
    torch.manual_seed(0)
    model = SmallCNN(width=4 if args.small else 8)
    reluscope.train_classifier(model, x, y, epochs=1 if args.small else 5, lr=3e-3, seed=0)
    model.eval()

    bits = reluscope.activation_patterns(model, x[:256])
    print(f"patterns: {bits.shape[1]} bits per image, {len(torch.unique(bits, dim=0))} distinct among {bits.shape[0]} images")

    one, four = x[y == 1][0], x[y == 4][0]
    path = reluscope.traverse(model, one, four)
    print(f"exact traversal 1 -> 4: {path.n_pieces} regions")

    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    plot_hamming_along_path(path, ax=ax, label=f"exact ({path.n_pieces} regions)")
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    grid = reluscope.activation_patterns(model, (1 - t[:, None, None, None]) * one.double() + t[:, None, None, None] * four.double())
    ax.plot(t, (grid != grid[0]).sum(1), "o", label="11 samples")
    ax.set_xlabel("t along the segment 1 -> 4")
    ax.set_ylabel("Hamming distance to the start")
    ax.legend()
    save(fig, args.out)


if __name__ == "__main__":
    main()
