"""Gradient representations as similarity functions (Racz & Daroczy 2021; docs/methods.md).

Tangent features g(x) = d f(x) / d theta, the similarity metrics built on them (Euclidean, rank-one
"full" and "block" by forward mode, the sign-agreement "sparse" metric, and the hidden-feature
baseline), the factorised empirical tangent kernel of MLPs, quality measures and classifiers.
"""

from .classifier import LandmarkClassifier, LinearSimilarityClassifier
from .features import Normalization, tangent_features
from .kernel import empirical_tangent_kernel
from .quality import GoodnessCurve, SimilarityGap, goodness_curve, per_input_gap, similarity_gap
from .scores import ScoreMethod, tangent_scores
from .similarity import Metric, hidden_features, tangent_similarity
from .sparse import SignAgreementMask, sign_agreement_mask, sign_agreement_scores

__all__ = [
    "tangent_features", "Normalization",
    "tangent_scores", "ScoreMethod",
    "tangent_similarity", "Metric", "hidden_features",
    "SignAgreementMask", "sign_agreement_mask", "sign_agreement_scores",
    "empirical_tangent_kernel",
    "SimilarityGap", "GoodnessCurve", "similarity_gap", "per_input_gap", "goodness_curve",
    "LandmarkClassifier", "LinearSimilarityClassifier",
]
