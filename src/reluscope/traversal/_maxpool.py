"""Exact traversal through MaxPool2d: split pieces until every window keeps one argmax, then
the near-tie check, the one-hot bits and the jvp from one pooling pass."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .._compiled import load_kernels
from ..network.layers import MaxPool2d
from ._pieces import LINE_ULPS, _Pieces, _apply_split, _flat_nonzero, _split_at
from .precision import decision_tolerance

COMPILED = True  # the compiled passes where they apply (tests compare both)


def _window_elements(layer: MaxPool2d, z: torch.Tensor, fill: float) -> list:
    """The kh * kw elements of every window, row-major, as strided views [B, C, Ho, Wo] (no copy
    without padding). F.unfold (im2col) took 80% of a CNN traversal's time for the same values."""
    ph, pw = layer.padding
    if ph or pw:
        z = F.pad(z, (pw, pw, ph, ph), value=fill)
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    ho, wo = (z.shape[2] - dh * (kh - 1) - 1) // sh + 1, (z.shape[3] - dw * (kw - 1) - 1) // sw + 1
    return [z[:, :, i * dh: i * dh + sh * (ho - 1) + 1: sh, j * dw: j * dw + sw * (wo - 1) + 1: sw]
            for i in range(kh) for j in range(kw)]


def require_windows(layer: MaxPool2d, h: int, w: int) -> None:
    """Refuse a max-pool with a window that reads only padding on an [h, w] map (torch returns
    -inf there, and the network's output becomes inf or NaN): one line naming the layer."""
    (kh, kw), (sh, sw), (ph, pw), (dy, dx) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    ho, wo = layer.output_hw(h, w)
    for size, k, s, p, d, n, axis in ((h, kh, sh, ph, dy, ho, "row"), (w, kw, sw, pw, dx, wo, "column")):
        for o in range(n):
            if not any(0 <= o * s - p + j * d < size for j in range(k)):
                raise ValueError(
                    f"layer {layer.name!r}: the max-pool window of output {axis} {o} reads only padding on a "
                    f"{h}x{w} input (kernel {layer.kernel_size}, stride {layer.stride}, padding {layer.padding}, "
                    f"dilation {layer.dilation}), so its max is -inf; reduce the padding or the dilation"
                )


def _compiled(h: torch.Tensor):
    """The compiled passes (`_maxpool_nb`) for float64 values on the CPU when numba loads, else None."""
    if h.dtype != torch.float64 or h.device.type != "cpu" or not COMPILED:
        return None
    return load_kernels("reluscope.traversal._maxpool_nb")


def _geometry(layer: MaxPool2d) -> tuple:
    (kh, kw), (sh, sw), (ph, pw), (dy, dx) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    return kh, kw, sh, sw, ph, pw, dy, dx


def _line_tolerance(dtype: torch.dtype) -> float:
    """Lines of two window elements within this fraction of their size over a piece do not cross
    there (`_maxpool_crossings`): `LINE_ULPS` ulps, and at most half the decision tolerance, so the
    near-tie check (reach up to twice this) flags every piece where a crossing was left out (the
    decision tolerance is 2 ulps in float16/bfloat16). In float64, `LINE_TOL64` of the kernels."""
    return min(LINE_ULPS * torch.finfo(dtype).eps, decision_tolerance(dtype) / 2)


def _maxpool_crossings(layer: MaxPool2d, h: torch.Tensor, dh: torch.Tensor, tm: torch.Tensor, half: torch.Tensor):
    """(row, t) of the points where a window element meets its window's max at the midpoint, for
    the elements that can (interval bound: gap < half * |slope difference|, as in `_sign_split`;
    the argmax itself and elements that stay below it on the whole piece need no division).
    An element whose line departs from the max's by no more than rounding over the piece (half *
    |slope difference| within `_line_tolerance` of their size) is not a crossing: splitting there would
    split again at every new midpoint (the values stay equal to the last bit, the slopes not),
    and which is the max there is a rounding decision, which the near-tie check flags."""
    nb = _compiled(h)
    if nb is not None:
        ho, wo = layer.output_hw(h.shape[2], h.shape[3])
        w = h.shape[3]
        h, dh = h.contiguous().flatten(2).numpy(), dh.contiguous().flatten(2).numpy()
        tm_, half_ = tm.numpy(), half.numpy()
        count = np.empty(h.shape[0], np.int64)
        z, zi = np.empty(0), np.empty(0, np.int64)
        nb.crossings(h, dh, w, tm_, half_, *_geometry(layer), ho, wo, False, count, zi, zi, z)
        if not count.any():
            return None
        start = np.cumsum(count) - count
        rows, roots = np.empty(int(count.sum()), np.int64), np.empty(int(count.sum()))
        nb.crossings(h, dh, w, tm_, half_, *_geometry(layer), ho, wo, True, count, start, rows, roots)
        return torch.from_numpy(rows), torch.from_numpy(roots)
    top, index = layer.pool(h)
    dtop = layer.take(dh, index)
    rows, roots = [], []
    for e, de in zip(_window_elements(layer, h, float("-inf")), _window_elements(layer, dh, 0.0)):
        gap, slope = top - e, de - dtop  # element - max = -gap + (t - tm) slope
        reach = slope.abs().mul_(half.reshape(-1, 1, 1, 1))
        beyond_rounding = torch.gt(reach, torch.maximum(top.abs(), e.abs()).mul_(_line_tolerance(h.dtype)))
        row, flat = _flat_nonzero((torch.lt(gap, reach) & beyond_rounding).reshape(h.shape[0], -1))
        if row.numel():
            rows.append(row)
            roots.append(tm.index_select(0, row) + gap.reshape(-1).index_select(0, flat) / slope.reshape(-1).index_select(0, flat))
    if not rows:
        return None
    return torch.cat(rows), torch.cat(roots)


def _split_maxpool(layer: MaxPool2d, p: _Pieces, j: int, tol: float, max_pieces: int | None = None):
    """Split until every piece keeps one argmax per window of value j (the pool's input): split at the points where some window
    element meets the argmax at the piece's midpoint, then look again at the new pieces only
    (a piece with no crossing is settled). Pieces are tracked as (source row of p, ta, tb) and
    materialised once at the end (h is affine on a source row, dh constant), so a pass costs
    only the pieces still unsettled. Returns (pieces, settled); settled is False (and p is
    returned unchanged) when the result would outgrow `max_pieces`: the caller refines p in chunks."""
    n = p.seg.shape[0]
    require_windows(layer, *p.vals[j][0].shape[2:])
    src, ta, tb = torch.arange(n, device=p.seg.device), p.ta, p.tb
    active = src  # indices into (src, ta, tb) still to examine
    hj_h, hj_dh = p.vals[j]
    k = layer.kernel_size[0] * layer.kernel_size[1]
    step = max(1, (max_pieces or n) // 2)
    for it in range(4 * k + 16):
        found_rows, found_t = [], []
        for a in range(0, active.shape[0], step):
            rows = active[a:a + step]
            if it == 0:  # every piece as it is: views, no copy
                lo, hi, h, dh = p.ta[a:a + step], p.tb[a:a + step], hj_h[a:a + step], hj_dh[a:a + step]
                tm = (lo + hi) / 2
            else:
                s = src.index_select(0, rows)
                lo, hi = ta.index_select(0, rows), tb.index_select(0, rows)
                tm = (lo + hi) / 2
                dh = hj_dh.index_select(0, s)
                h = hj_h.index_select(0, s).addcmul_(dh, (tm - p.tm.index_select(0, s)).to(dh.dtype).reshape((-1,) + (1,) * (dh.dim() - 1)))
            got = _maxpool_crossings(layer, h, dh, tm, ((hi - lo) / 2 - tol).to(h.dtype))
            if got is not None:
                found_rows.append(rows.index_select(0, got[0]))
                found_t.append(got[1])
        if not found_rows:
            break
        split = _split_at(ta, tb, torch.cat(found_rows), torch.cat(found_t), tol)
        if split is None:
            break
        parent, ta, tb = split
        moved = torch.bincount(parent, minlength=src.shape[0]) > 1  # rows that were split
        src = src.index_select(0, parent)
        active = moved.index_select(0, parent).nonzero().squeeze(1)
        if max_pieces is not None and src.shape[0] > max_pieces and n > 1:
            return p, False
    else:
        raise RuntimeError(f"layer {layer.name!r}: max-pool splitting did not settle; please report this input")
    if src.shape[0] == n:
        return p, True
    return _apply_split(p, (src, ta, tb)), True


def _maxpool_near_tie(layer: MaxPool2d, p: _Pieces, h: torch.Tensor, dh: torch.Tensor, dtol: float,
                      top: torch.Tensor, dtop: torch.Tensor) -> torch.Tensor:
    """bool [I]: in some window, an element other than the argmax stays within rounding of the
    max over the whole piece. Exact ties (two zeros after a ReLU, the argmax itself) have reach
    0 and are exact. `top`, `dtop`: the pooled max and its derivative (`_maxpool_jvp`)."""
    top, dtop = top.to(torch.float64), dtop.to(torch.float64)
    half = ((p.tb - p.ta) / 2).reshape(-1, 1, 1, 1)
    elements = _window_elements(layer, h, 0.0)  # padding 0 only for the scale: |0| never raises it
    scale = torch.stack([e.abs().flatten(1).amax(1) for e in elements], 1).amax(1).to(torch.float64)
    cut = (dtol * scale).reshape(-1, 1, 1, 1)
    near = torch.zeros(h.shape[0], dtype=torch.bool, device=h.device)
    for e, de in zip(_window_elements(layer, h, float("-inf")), _window_elements(layer, dh, 0.0)):
        reach = (de.to(torch.float64) - dtop).abs_().mul_(half).add_(top - e.to(torch.float64))
        near |= ((reach <= cut) & (reach > 0)).flatten(1).any(1)
    return near


def _maxpool_jvp(layer: MaxPool2d, p: _Pieces, h: torch.Tensor, dh: torch.Tensor, dtol: float):
    """Max pooling on settled pieces with one pooling pass: marks near ties in p.uncertain,
    appends the one-hot argmax bits to p.bits and returns (h, dh) after the layer."""
    nb = _compiled(h)
    if nb is not None:
        n, c = h.shape[:2]
        ho, wo = layer.output_hw(h.shape[2], h.shape[3])
        k = layer.kernel_size[0] * layer.kernel_size[1]
        out, dout = np.empty((n, c, ho * wo)), np.empty((n, c, ho * wo))
        bits, near = np.zeros((n, c * ho * wo * k), np.bool_), np.empty(n, np.bool_)
        half = ((p.tb - p.ta) / 2).numpy()
        nb.pool_jvp(h.contiguous().flatten(2).numpy(), dh.contiguous().flatten(2).numpy(), h.shape[3], wo, half, dtol,
                    *_geometry(layer), out, dout, bits, near)
        p.uncertain |= torch.from_numpy(near)
        p.bits.append(torch.from_numpy(bits))
        return torch.from_numpy(out).reshape(n, c, ho, wo), torch.from_numpy(dout).reshape(n, c, ho, wo)
    top, index = layer.pool(h)
    dtop = layer.take(dh, index)
    p.uncertain |= _maxpool_near_tie(layer, p, h, dh, dtol, top, dtop)
    k = layer.kernel_size[0] * layer.kernel_size[1]
    p.bits.append(F.one_hot(layer._window_position(index, h.shape[-1]), k).bool().reshape(top.shape[0], -1))
    return top, dtop
