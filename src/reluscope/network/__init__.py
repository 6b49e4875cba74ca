"""reluscope's description of a piecewise-linear network and its conversion from torch."""

from .convert import SUPPORTED_MODULES, to_network
from .layers import (
    AdaptiveAvgPool2d,
    Cat,
    ConstOp,
    Interpolate,
    Pad,
    Permute,
    Squeeze,
    To2d,
    Total,
    Transpose,
    Index,
    Mean,
    Reshape,
    Split,
    Stack,
    Sum,
    Unflatten,
    AbstractActivation,
    AbstractAffine,
    AbstractLayer,
    AvgPool2d,
    ChannelAffine,
    Conv2d,
    Flatten,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Smooth,
)
from .network import LayerUnits, Network, Node, NodeStep
from .whitelist import WHITELIST, check_hooks, whitelisted

__all__ = [
    "SUPPORTED_MODULES", "WHITELIST", "whitelisted", "check_hooks", "to_network", "Network", "Node", "NodeStep",
    "LayerUnits", "AdaptiveAvgPool2d", "Cat", "Reshape", "Sum", "Unflatten", "Index", "Split", "Stack", "Mean",
    "Total", "Pad", "Interpolate", "ConstOp", "Squeeze", "To2d", "Transpose", "Permute",
    "AbstractLayer", "AbstractAffine", "AbstractActivation",
    "Linear", "Conv2d", "ChannelAffine", "AvgPool2d", "Flatten",
    "ReLU", "LeakyReLU", "MaxPool2d", "Smooth",
]
