"""scikit-learn's estimator protocol without scikit-learn: `get_params`, `set_params`, `repr`.

Parameters are the named arguments of the `__init__` methods along the class's MRO, stored
unchanged under their own names (so `sklearn.base.clone` and grid searches can rebuild an
estimator); fitted state ends in `_` and is set by `fit`.
"""

from __future__ import annotations

import inspect
from typing import Any

__all__ = ["Estimator"]


class Estimator:
    """Base of reluscope's estimators (`NearestConvexHull`, the similarity classifiers)."""

    @classmethod
    def _param_names(cls) -> list[str]:
        names: list[str] = []
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None or klass is object:
                continue
            for p in list(inspect.signature(init).parameters.values())[1:]:
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD) and p.name not in names:
                    names.append(p.name)
        return names

    def _store(self, values: dict[str, Any]) -> None:
        """Store the parameters of an `__init__` from its `locals()`, each under its own name."""
        for name in type(self)._param_names():
            if name in values:
                setattr(self, name, values[name])

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's parameters by name (scikit-learn's protocol asks for a dict)."""
        return {name: getattr(self, name) for name in type(self)._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Change parameters by name (unknown names are refused); returns the estimator."""
        valid = type(self)._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"{name}: not a parameter of {type(self).__name__}; expected one of {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {}
        for klass in type(self).__mro__:
            init = klass.__dict__.get("__init__")
            if init is not None and klass is not object:
                for p in inspect.signature(init).parameters.values():
                    defaults.setdefault(p.name, p.default)
        changed = [f"{k}={v!r}" for k, v in self.get_params().items()
                   if not (defaults.get(k, inspect.Parameter.empty) is v or _same(defaults.get(k), v))]
        return f"{type(self).__name__}({', '.join(changed)})"


def _same(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - tensors and arrays compare elementwise
        return False
