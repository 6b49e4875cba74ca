"""Slow, independent reference implementations and invariant checkers.

Every fast path of reluscope is tested against these in float64 on small random networks:
dense sampling along segments (`sampling`), the folding measure written as plain Python loops
(`folding`), grid-sampled regions and the complex's invariant checker (`regions`), generic LP/QP
solvers for hull distances (`hull`) and explicit per-sample autograd (`tangent`). They are part of
the package so users can check their own models the same way.
"""

from .sampling import PatternKey, check_traversal, maxpool_argmax_bits, module_patterns, sample_segment

__all__ = ["check_traversal", "maxpool_argmax_bits", "module_patterns", "sample_segment", "PatternKey"]
