"""What the explorer page may ask for: one validated, capped training configuration.

Every request from the page goes through `ExploreConfig.from_request`, which accepts only known
keys, checks each type and range, and caps sizes, so a request cannot ask the server for a
10^4-wide network or a million points. Errors are one line naming the field.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from .._checks import as_enum

__all__ = ["ExploreConfig", "ToyData", "Activation", "OptimizerName", "LIMITS"]


class ToyData(str, enum.Enum):
    """The 2-D data sets of `reluscope.data.make_toy`. MOONS is the default: two classes whose
    boundary needs a few bends, so regions and folding appear within a few hundred steps."""

    MOONS = "moons"
    CIRCLES = "circles"
    SPIRALS = "spirals"
    XOR = "xor"
    BLOBS = "blobs"


class Activation(str, enum.Enum):
    """RELU (default) as in the papers; LEAKY_RELU keeps every unit's gradient alive."""

    RELU = "relu"
    LEAKY_RELU = "leaky_relu"


class OptimizerName(str, enum.Enum):
    """ADAM (default) trains the small nets in a few hundred steps whatever the learning rate's
    scale; SGD shows the plainer dynamics."""

    ADAM = "adam"
    SGD = "sgd"


# Caps keep one request cheap: the region map of a 4 x 64 net on a box is thousands of faces.
LIMITS = {"max_width": 64, "max_layers": 4, "max_points": 2000, "max_steps_per_frame": 200}


@dataclass(frozen=True)
class ExploreConfig:
    """One training run of the explorer (defaults: a 2-16-16-2 ReLU net on 200 moons points)."""

    data: ToyData = ToyData.MOONS
    n_points: int = 200
    noise: float | None = None
    widths: tuple[int, ...] = (16, 16)
    activation: Activation = Activation.RELU
    optimizer: OptimizerName = OptimizerName.ADAM
    lr: float = 0.01
    weight_decay: float = 0.0
    batch_size: int = 32
    steps_per_frame: int = 5
    seed: int = 0

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(data=self.data.value, activation=self.activation.value, optimizer=self.optimizer.value,
                 widths=list(self.widths))
        return d

    @classmethod
    def from_request(cls, body: Mapping) -> "ExploreConfig":
        """Validate a JSON object from the page; unknown keys and out-of-range values are refused."""
        if not isinstance(body, Mapping):
            raise ValueError(f"config: expected a JSON object, got {type(body).__name__}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(body) - known)
        if unknown:
            raise ValueError(f"config: unknown field(s) {unknown}; allowed: {sorted(known)}")
        v = dict(body)
        out = {}
        if "data" in v:
            out["data"] = as_enum(v["data"], ToyData, "data")
        if "activation" in v:
            out["activation"] = as_enum(v["activation"], Activation, "activation")
        if "optimizer" in v:
            out["optimizer"] = as_enum(v["optimizer"], OptimizerName, "optimizer")
        if "n_points" in v:
            out["n_points"] = _int(v["n_points"], "n_points", 4, LIMITS["max_points"])
        if "batch_size" in v:
            out["batch_size"] = _int(v["batch_size"], "batch_size", 1, LIMITS["max_points"])
        if "steps_per_frame" in v:
            out["steps_per_frame"] = _int(v["steps_per_frame"], "steps_per_frame", 1, LIMITS["max_steps_per_frame"])
        if "seed" in v:
            out["seed"] = _int(v["seed"], "seed", 0, 2**31 - 1)
        if "widths" in v:
            w = v["widths"]
            if isinstance(w, str):
                w = [p for p in w.replace(" ", "").split(",") if p]
            if not isinstance(w, (list, tuple)) or not 1 <= len(w) <= LIMITS["max_layers"]:
                raise ValueError(f"widths: expected 1 to {LIMITS['max_layers']} hidden widths, got {w!r}")
            out["widths"] = tuple(_int(x, "widths", 1, LIMITS["max_width"]) for x in w)
        if "lr" in v:
            out["lr"] = _float(v["lr"], "lr", 1e-6, 10.0)
        if "weight_decay" in v:
            out["weight_decay"] = _float(v["weight_decay"], "weight_decay", 0.0, 1.0)
        if "noise" in v and v["noise"] is not None:
            out["noise"] = _float(v["noise"], "noise", 0.0, 1.0)
        return cls(**out)


def _int(value, name: str, lo: int, hi: int) -> int:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected an integer in [{lo}, {hi}], got {value!r}")
    return value


def _float(value, name: str, lo: float, hi: float) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"{name}: expected a number in [{lo}, {hi}], got {value!r}")
    return float(value)
