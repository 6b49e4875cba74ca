"""Traversal of straight segments x0 -> x1: the sequence of regions (activation patterns) met.

`traverse` / `traverse_many` / `traverse_pairs` (and `traverse_batches`, batch by batch) are exact for piecewise-linear networks (ReLU,
LeakyReLU, MaxPool2d). Smooth activations (GELU, SiLU, Tanh, Sigmoid) have no exact traversal;
`traverse_bisection` finds their pattern changes by adaptive bisection down to a tolerance.
"""

from .bisection import traverse_bisection
from .exact import TOLERANCE, Traversal, Traversals, traverse, traverse_batches, traverse_many, traverse_pairs
from .precision import Precision, PrecisionWarning

__all__ = ["Traversal", "Traversals", "traverse", "traverse_many", "traverse_batches", "traverse_pairs", "traverse_bisection", "TOLERANCE", "Precision", "PrecisionWarning"]
