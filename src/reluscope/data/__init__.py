"""Data sets, all available offline: MNIST and Fashion-MNIST (verified against the official MD5
sums, cached as npz), sklearn's 8x8 digits, and seeded 2-D toy sets.

Every loader returns (x float32 tensor, y int64 tensor).
"""

from .hull import HULL_TOY_SETS, load_hull_toy, read_point_file
from .sampling import sample_per_class
from .split import MnistSplit, split_mnist
from .idx import decode_idx, encode_idx, idx_md5
from .mnist import (
    FASHION_MNIST_MD5,
    MNIST_MD5,
    build_fashion_mnist_cache,
    build_mnist_cache,
    cache_dir,
    find_mnist_source,
    load_fashion_mnist,
    load_mnist,
)
from .named import IMAGE_SHAPES, DatasetName, ImageSet, Split, fit_to_model, load_dataset
from .toy import TOY_DATASETS, load_digits, make_toy

__all__ = [
    "load_mnist", "load_fashion_mnist", "split_mnist", "MnistSplit", "sample_per_class", "load_hull_toy", "HULL_TOY_SETS", "read_point_file", "load_digits", "make_toy", "TOY_DATASETS",
    "build_mnist_cache", "build_fashion_mnist_cache", "cache_dir", "find_mnist_source",
    "MNIST_MD5", "FASHION_MNIST_MD5", "encode_idx", "decode_idx", "idx_md5",
    "DatasetName", "ImageSet", "Split", "load_dataset", "fit_to_model", "IMAGE_SHAPES",
]
