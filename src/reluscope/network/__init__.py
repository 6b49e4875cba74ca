"""reluscope's description of a piecewise-linear network and its conversion from torch."""

from .convert import SUPPORTED_MODULES, to_network
from .layers import (
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
from .network import LayerUnits, Network

__all__ = [
    "SUPPORTED_MODULES", "to_network", "Network", "LayerUnits",
    "AbstractLayer", "AbstractAffine", "AbstractActivation",
    "Linear", "Conv2d", "ChannelAffine", "AvgPool2d", "Flatten",
    "ReLU", "LeakyReLU", "MaxPool2d", "Smooth",
]
