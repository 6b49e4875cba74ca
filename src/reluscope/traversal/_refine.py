"""Exact traversal's refinement, one node of the network at a time: the plan (which nodes run,
when a value is freed), affine nodes (convolutions in chunks), activations (split, then bits and
jvp) and `_descend`, which refines pieces depth first in chunks that fit the memory budget."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .._checks import DEFAULT_MEMORY_BUDGET
from ..network import Network
from ..network.layers import AbstractActivation, AbstractAffine, Conv2d, LeakyReLU, MaxPool2d
from ..network.network import INPUT
from ._maxpool import _maxpool_jvp, _split_maxpool
from ._pieces import _apply_split, _merge_equal, _near_zero, _Pieces, _select, _sign_split

def _affine_pieces(layer: AbstractAffine, h: torch.Tensor, dh: torch.Tensor, budget: int):
    """(layer.forward(h), layer.linear(dh)) for all pieces. A convolution runs in row chunks:
    torch's float64 convolution on the CPU unfolds its whole batch (in_channels * kh * kw values
    per output position: 5 MB per piece for the tangent CNN's second conv at width 64, 35x its
    output), which took a width-32 traversal to 9 GB against a 2 GiB budget. The unfolded
    chunk gets a quarter of the budget."""
    n = h.shape[0]
    if not isinstance(layer, Conv2d) or n <= 1:
        return layer.forward(h), layer.linear(dh)
    first = layer.forward(h[:1])
    w = layer.weight
    per_row = w.shape[1] * layer.groups * w.shape[2] * w.shape[3] * first[0, 0].numel() * h.element_size()
    rows = max(1, budget // 4 // max(per_row, 1))
    if rows >= n:
        return layer.forward(h), layer.linear(dh)
    out, dout = first.new_empty((n,) + first.shape[1:]), first.new_empty((n,) + first.shape[1:])
    for a in range(0, n, rows):
        out[a:a + rows] = layer.forward(h[a:a + rows])
        dout[a:a + rows] = layer.linear(dh[a:a + rows])
    return out, dout


def _leaky_relu_jvp_(layer: LeakyReLU, z: torch.Tensor, dz: torch.Tensor, on: torch.Tensor):
    """`layer.jvp(z, dz)` computed in place: z and dz belong to the traversal, and the pieces'
    tensors are the largest it holds, so saving two allocations per layer matters."""
    if layer.negative_slope:
        return F.leaky_relu_(z, layer.negative_slope), dz.mul_(torch.full_like(dz, layer.negative_slope).masked_fill_(on, 1.0))
    return z.clamp_(min=0), dz.masked_fill_(~on, 0.0)


# ---------------------------------------------------------------- the plan: which nodes, when to free


class _OutputSigns:
    """The output units' signs as a last pseudo-activation (include_output)."""

    name = "output"


@dataclass(frozen=True)
class _Step:
    """One node of the walk: node index `node` (-2 for the output signs), its layer and inputs,
    the values that nobody reads after it (`free`), and whether its own output is read later."""

    node: int
    layer: object
    inputs: tuple[int, ...]
    free: tuple[int, ...]
    used: bool


def _plan(net: Network, include_output: bool) -> list[_Step]:
    """The nodes a traversal must run, in topological order: those that feed an activation (or
    the output, with include_output). Nothing after the last activation can change the pattern,
    and a branch that only feeds the output is not computed at all. `Network.schedule` does the
    bookkeeping; the plan also frees the input's pieces after their last reader and never keeps
    a value nobody reads (`used`)."""
    n = len(net.nodes)
    acts = [i for i, node in enumerate(net.nodes) if isinstance(node.layer, AbstractActivation)]
    steps = net.schedule(acts + [n - 1] if include_output else acts)
    last_input = max((k for k, st in enumerate(steps) if INPUT in st.inputs), default=-1)
    plan = []
    for k, st in enumerate(steps):
        free = {j for j in st.free if j != st.index} | ({INPUT} if k == last_input else set())
        used = st.index not in st.free and (include_output or st.index != n - 1)  # the output: read by the signs
        plan.append(_Step(st.index, st.layer, st.inputs, tuple(sorted(free)), used))
    if include_output:
        plan.append(_Step(-2, _OutputSigns(), (n - 1,), (n - 1,), False))
    return plan


def _owns(p: _Pieces, j: int) -> bool:
    """Whether value j shares no memory with another live value (a Flatten or a Sum with one
    unit coefficient returns a view of its input), so it may be overwritten in place."""
    h, dh = p.vals[j]
    mine = {h.untyped_storage().data_ptr(), dh.untyped_storage().data_ptr()}
    return not any(k != j and (a.untyped_storage().data_ptr() in mine or b.untyped_storage().data_ptr() in mine)
                   for k, (a, b) in p.vals.items())


# ---------------------------------------------------------------- refinement, one node at a time


@dataclass
class _Walk:
    tol: float
    dtol: float
    max_pieces: int
    leaves: list  # (seg, ta, tb, packed patterns, uncertain) per finished chunk, in order
    bar: object = None  # progress over nodes, advanced by the first chunk's path only
    memory_budget: int = DEFAULT_MEMORY_BUDGET  # bytes; bounds the convolutions' unfolded buffers


def _affine(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """An affine node maps the tuple of its input values (multi-input: Sum, Cat)."""
    if len(step.inputs) == 1:
        p.vals[step.node] = _affine_pieces(step.layer, *p.vals[step.inputs[0]], walk.memory_budget)
        return
    ins = [p.vals[j] for j in step.inputs]
    p.vals[step.node] = (step.layer.forward(*[h for h, _ in ins]), step.layer.linear(*[dh for _, dh in ins]))


def _sign_bits(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """Bits and jvp of a (Leaky)ReLU, or the output signs, on pieces that no longer split."""
    j = step.inputs[0]
    h, dh = p.vals[j]
    n = h.shape[0]
    p.uncertain |= _near_zero(h.reshape(n, -1), dh.reshape(n, -1), (p.tb - p.ta) / 2, walk.dtol)
    if isinstance(step.layer, _OutputSigns):
        p.bits.append(h.reshape(n, -1) > 0)
        return
    on = step.layer.bits(h)
    p.bits.append(on)
    if not step.used:
        return  # the last activation: its output is never read
    if j in step.free and _owns(p, j):
        p.vals[step.node] = _leaky_relu_jvp_(step.layer, h, dh, on.reshape(h.shape))
    else:  # the pre-activation is read again later (or shares memory with a value that is)
        p.vals[step.node] = step.layer.jvp(h, dh)


def _maxpool_bits(step: _Step, p: _Pieces, walk: _Walk) -> None:
    """Near ties, bits and jvp of a max-pool node on settled pieces, from one pooling pass."""
    out = _maxpool_jvp(step.layer, p, *p.vals[step.inputs[0]], walk.dtol)
    if step.used:
        p.vals[step.node] = out


def _free(step: _Step, p: _Pieces) -> None:
    for j in step.free:
        del p.vals[j]


def _finish(p: _Pieces, walk: _Walk) -> None:
    walk.leaves.append(_merge_equal(p.seg, p.ta, p.tb, p.bits, p.uncertain))


def _descend(plan: list, s0: int, p: _Pieces, walk: _Walk, post_split: bool = False, top: bool = True) -> None:
    """Refine pieces from step s0 of the plan on, depth first: when a split would make more than
    `walk.max_pieces` pieces, the new pieces go through the rest of the graph in chunks, so memory
    stays within the budget whatever the number of pieces. Finished chunks go to walk.leaves."""
    for s in range(s0, len(plan)):
        step = plan[s]
        layer = step.layer
        if isinstance(layer, AbstractAffine):
            _affine(step, p, walk)
        elif isinstance(layer, (LeakyReLU, _OutputSigns)):
            if not (post_split and s == s0):
                split = _sign_split(p, *p.vals[step.inputs[0]], walk.tol)
                if split is not None:
                    n_new, m = split[0].shape[0], walk.max_pieces
                    if n_new > m:
                        for a in range(0, n_new, m):
                            sub = tuple(t[a:a + m] for t in split)
                            _descend(plan, s, _apply_split(p, sub), walk, post_split=True, top=False)
                        if top and walk.bar is not None:
                            walk.bar.update(len(plan) - s)
                        return
                    p = _apply_split(p, split)
            _sign_bits(step, p, walk)
        elif isinstance(layer, MaxPool2d):
            p, settled = _split_maxpool(layer, p, step.inputs[0], walk.tol, walk.max_pieces)
            if not settled:
                # chunks strictly smaller than p: a chunk that again outgrows the budget halves again
                n = p.seg.shape[0]
                m = max(1, min(walk.max_pieces // 2, (n + 1) // 2))
                for a in range(0, n, m):
                    rows = torch.arange(a, min(n, a + m), device=p.seg.device)
                    _descend(plan, s, _select(p, rows), walk, top=False)
                if top and walk.bar is not None:
                    walk.bar.update(len(plan) - s)
                return
            _maxpool_bits(step, p, walk)
        elif isinstance(layer, AbstractActivation):
            raise TypeError(f"layer {layer.name!r} ({type(layer).__name__}) has no exact traversal")
        else:
            raise TypeError(f"layer {layer.name!r}: unknown layer type {type(layer).__name__}")
        _free(step, p)
        if top and walk.bar is not None:
            walk.bar.update()
    _finish(p, walk)


def _bytes_per_piece(net: Network, probe: torch.Tensor, include_output: bool, start: int = 0) -> int:
    """Working bytes of one interval in `_traverse_chunk` (an estimate, used to size chunks and
    batches), the busiest node of the plan counted: at an activation, while a split is applied,
    the old and the new pieces' h and dh of every live value (its input, values kept for later
    nodes such as a residual shortcut) with two temporaries of the input's size (six values per
    unit in a chain); at an affine node, h and dh of the live values and of its output. Plus the
    pattern bits of every layer, copied once. Convolutions' unfolded buffers are bounded apart
    (`_affine_pieces`). Measured on the tangent CNN (width 16, float64): peak growth of the
    process within the budget. `start`: the walk begins at that step of the plan (after the
    sparse front, `_front`), holding only the value the step before it computed."""
    values = net.values(probe)
    size = {INPUT: probe[0].numel(), **{i: v[0].numel() for i, v in enumerate(values)}}
    plan = _plan(net, include_output)
    live, peak, units = ({INPUT} if start == 0 else {plan[start - 1].node}), 0, 0
    for k, step in enumerate(plan):
        if isinstance(step.layer, AbstractActivation):
            units += step.layer.bits(values[step.inputs[0]] if step.inputs[0] >= 0 else probe).shape[1]
        elif isinstance(step.layer, _OutputSigns):
            units += size[step.inputs[0]]
        if k < start:
            continue
        held = sum(size[j] for j in live)
        if isinstance(step.layer, AbstractAffine):
            peak = max(peak, 2 * (held + size[step.node]))
        else:
            peak = max(peak, 4 * held + 2 * size[step.inputs[0]])
        live = (live - set(step.free)) | ({step.node} if step.used else set())
    return 8 * peak + 2 * units + 64
