"""A 2-D affine slice of a network's input space: x(s, t) = origin + s * u + t * v.

Region maps of inputs with more than two numbers are computed on such a plane; the box of
`regions_2d` is then in plane coordinates (s, t). `Plane.through_points(a, b, c)` gives an
orthonormal basis (u, v), so areas and edge lengths in plane coordinates are true input-space
areas and lengths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from .._checks import as_float_tensor, check_finite

if TYPE_CHECKING:
    from .._types import ArrayLike

__all__ = ["Plane"]


@dataclass(frozen=True, eq=False)
class Plane:
    """origin, u, v: float64 tensors of the network's input shape (without batch dimension).

    `anchors` ([k, 2], may be empty) are plane coordinates of points worth marking, e.g. the
    three inputs the plane was built through.
    """

    origin: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    anchors: torch.Tensor | None = None

    def __init__(self, origin: ArrayLike, u: ArrayLike, v: ArrayLike, anchors: ArrayLike | None = None):
        o = check_finite(as_float_tensor(origin, "origin", dtype=torch.float64), "origin")
        du = check_finite(as_float_tensor(u, "u", dtype=torch.float64), "u")
        dv = check_finite(as_float_tensor(v, "v", dtype=torch.float64), "v")
        if du.shape != o.shape or dv.shape != o.shape:
            raise ValueError(
                f"Plane: origin, u and v must have the same shape, got {list(o.shape)}, "
                f"{list(du.shape)}, {list(dv.shape)}"
            )
        gram = torch.stack([du.flatten(), dv.flatten()]) @ torch.stack([du.flatten(), dv.flatten()]).T
        det = float(torch.linalg.det(gram))
        scale = float(gram[0, 0] * gram[1, 1])
        if not scale > 0 or det <= 1e-12 * scale:
            raise ValueError(
                "Plane: u and v must be linearly independent directions, got parallel or zero "
                f"vectors (|u|^2={float(gram[0, 0]):.3g}, |v|^2={float(gram[1, 1]):.3g}, "
                f"Gram determinant {det:.3g})"
            )
        object.__setattr__(self, "origin", o)
        object.__setattr__(self, "u", du)
        object.__setattr__(self, "v", dv)
        a = torch.zeros(0, 2, dtype=torch.float64) if anchors is None else torch.as_tensor(anchors, dtype=torch.float64).reshape(-1, 2)
        object.__setattr__(self, "anchors", a)

    @classmethod
    def through_points(cls, a: ArrayLike, b: ArrayLike, c: ArrayLike) -> "Plane":
        """The plane through three inputs: origin at their centroid, orthonormal (u, v).

        u points from `a` to `b`; v is the part of c - a orthogonal to u. Raises if the three
        points are (nearly) collinear.
        """
        given = [as_float_tensor(p, name) for p, name in ((a, "a"), (b, "b"), (c, "c"))]
        # rounding of the inputs' own precision (float32: 6e-8) decides what counts as collinear
        eps = max(torch.finfo(p.dtype).eps for p in given)
        pts = [check_finite(p.to(torch.float64), name) for p, name in zip(given, "abc")]
        if not (pts[0].shape == pts[1].shape == pts[2].shape):
            raise ValueError(
                f"Plane.through_points: a, b and c must have the same shape, got "
                f"{[list(p.shape) for p in pts]}"
            )
        shape = pts[0].shape
        pa, pb, pc = (p.flatten() for p in pts)
        e1, e2 = pb - pa, pc - pa
        n1 = torch.linalg.norm(e1)
        if float(n1) == 0:
            raise ValueError("Plane.through_points: a and b are the same point; pass three distinct, non-collinear points")
        u = e1 / n1
        w = e2 - (e2 @ u) * u
        nw = torch.linalg.norm(w)
        # w is rounding noise when it is within the inputs' rounding error, which scales with
        # the points' magnitude, not with their distances (a, 2a, 3a in float32: |w| ~ 1e-7 |a|)
        scale = max(float(torch.linalg.norm(p)) for p in (pa, pb, pc))
        if float(nw) <= max(1e-9 * max(float(n1), float(torch.linalg.norm(e2))), 64 * eps * scale):
            raise ValueError(
                "Plane.through_points: a, b and c are collinear (c lies on the line through a "
                "and b), so they span no plane; pass three non-collinear points"
            )
        v = w / nw
        origin = (pa + pb + pc) / 3
        anchors = torch.stack([torch.stack([(p - origin) @ u, (p - origin) @ v]) for p in (pa, pb, pc)])
        return cls(origin.reshape(shape), u.reshape(shape), v.reshape(shape), anchors)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.origin.shape)

    def to_input(self, st: ArrayLike) -> torch.Tensor:
        """Plane coordinates [N, 2] -> inputs [N, *input_shape]."""
        st = as_float_tensor(st, "st", dtype=torch.float64)
        if st.dim() != 2 or st.shape[1] != 2:
            raise ValueError(f"st: expected plane coordinates of shape [N, 2], got {list(st.shape)}")
        o, u, v = (t.to(st.device).flatten() for t in (self.origin, self.u, self.v))
        x = o + st[:, :1] * u + st[:, 1:] * v
        return x.reshape(st.shape[0], *self.input_shape)

    def project(self, x: ArrayLike) -> torch.Tensor:
        """Inputs [N, *input_shape] -> least-squares plane coordinates [N, 2]."""
        x = as_float_tensor(x, "x", dtype=torch.float64).reshape(-1, self.origin.numel())
        basis = torch.stack([self.u.flatten(), self.v.flatten()], 1)  # [D, 2]
        sol = torch.linalg.lstsq(basis, (x - self.origin.flatten()).T).solution
        return sol.T

    def box_around_anchors(self, margin: float = 0.25) -> tuple[float, float, float, float]:
        """A square box around the anchors with `margin` (fraction of its side) on each side."""
        if self.anchors.shape[0] == 0:
            raise ValueError("box: this plane has no anchors; pass box=(xmin, xmax, ymin, ymax)")
        lo, hi = self.anchors.min(0).values, self.anchors.max(0).values
        centre, half = (lo + hi) / 2, float((hi - lo).max()) / 2 * (1 + 2 * margin)
        if not half > 0:  # a single anchor (or all at one point): a unit box around it
            half = 1.0
        return (float(centre[0]) - half, float(centre[0]) + half, float(centre[1]) - half, float(centre[1]) + half)
