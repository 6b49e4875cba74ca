"""`Network`: a user's model as a graph (DAG) of affine layers and activations.

Converted once from a `torch.nn.Module` through an explicit whitelist (see `convert.py`); every
capability of reluscope (patterns, traversal, regions, folding) reads this description instead of
hooking into the user's module, so all of them agree on what a unit and a pattern are.

The graph is a topologically ordered tuple of `Node`s. Node i computes
`layer.forward(*[value[j] for j in node.inputs])`, where value[-1] is the network input and value[j]
(j >= 0) the output of node j; the network's output is the last node's. A chain (each node reads
the one before) is the common, fast special case: `Network.layers` gives its layers in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

import torch

from .layers import AbstractActivation, AbstractLayer

__all__ = ["Network", "Node", "LayerUnits", "NodeStep"]

INPUT = -1  # the index that stands for the network input in `Node.inputs`


@dataclass(frozen=True)
class LayerUnits:
    """Where one activation node's bits sit in the flat pattern: bits[start:stop].

    `node` is the index of the node in `Network.nodes` (-1 for the output bits).
    """

    name: str
    kind: str
    start: int
    stop: int
    node: int = -1

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True, eq=False)
class Node:
    """One layer of the graph and where its inputs come from (-1: the network input)."""

    layer: AbstractLayer
    inputs: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.layer.name


@dataclass(frozen=True, eq=False)
class NodeStep:
    """One node of `Network.schedule()`: its index, the node, and `free`, the values nobody reads
    after it (its inputs whose last reader it is, and its own output if no later node reads it; never
    the network input or the network output), so a walk over the graph drops them once it has run."""

    index: int
    node: Node
    free: tuple[int, ...]

    @property
    def layer(self) -> AbstractLayer:
        return self.node.layer

    @property
    def inputs(self) -> tuple[int, ...]:
        return self.node.inputs


@dataclass(frozen=True, eq=False)
class Network:
    """A topologically ordered graph of layers plus the input shape (without batch dimension).

    `input_shape` may be None for MLPs until an input fixes it; unit counts of convolutional
    networks depend on it.
    """

    nodes: tuple[Node, ...]
    input_shape: tuple[int, ...] | None = None

    @classmethod
    def chain(cls, layers: Sequence[AbstractLayer], input_shape: Sequence[int] | None = None) -> "Network":
        """Layers applied one after another; `input_shape` excludes the batch dimension."""
        nodes = tuple(Node(layer, (i - 1,)) for i, layer in enumerate(layers))
        return cls(nodes, None if input_shape is None else tuple(int(s) for s in input_shape))

    def __post_init__(self):
        for i, node in enumerate(self.nodes):
            if not node.inputs or any(not (INPUT <= j < i) for j in node.inputs):
                raise ValueError(f"node {i} ({node.name!r}): inputs {node.inputs} must be earlier nodes or -1")

    # -- structure ---------------------------------------------------------------------------
    @cached_property
    def is_chain(self) -> bool:
        return all(node.inputs == (i - 1,) for i, node in enumerate(self.nodes))

    @property
    def layers(self) -> tuple[AbstractLayer, ...]:
        """The layers in order, for chains only (graphs raise a TypeError naming the first join)."""
        self.require_chain("the factorised tangent kernel")
        return tuple(node.layer for node in self.nodes)

    def require_chain(self, what: str) -> None:
        if self.is_chain:
            return
        node = next(n for i, n in enumerate(self.nodes) if n.inputs != (i - 1,))
        why = " (a ReLU6/Hardtanh is two ReLUs joined)" if node.name.endswith(("#lo_in", "#hi_in")) or any(
            self.nodes[j].name == f"{node.name}#hi" for j in node.inputs) else ""
        raise TypeError(
            f"{what}: chains of layers only for now, but this network is a graph (node "
            f"{node.name!r} reads {self._describe_inputs(node)}{why}); activation_patterns, activations, "
            "traversal, folding, regions_2d, hull functions by layer name and tangent features handle graphs"
        )

    def _describe_inputs(self, node: Node) -> str:
        return ", ".join("the input" if j == INPUT else repr(self.nodes[j].name) for j in node.inputs)

    def schedule(self, targets: Iterable[int] | None = None) -> tuple[NodeStep, ...]:
        """The nodes that compute `targets` (node indices, default: every node), in topological
        order, each with the values to free after it (`NodeStep.free`, counting readers among these
        nodes only): the bookkeeping of every walk that keeps only live values (forward,
        regions_2d's sweep). A walk that needs a target's value after its step keeps it itself."""
        if targets is None:
            return self._schedule
        targets = set(targets)
        n = len(self.nodes)
        bad = next((t for t in targets if type(t) is bool or not hasattr(t, "__index__") or not 0 <= t < n), None)
        if bad is not None:
            raise ValueError(f"targets: expected node indices in [0, {n}), got {bad!r}")
        return self._schedule_of({int(t) for t in targets})

    @cached_property
    def _schedule(self) -> tuple[NodeStep, ...]:
        return self._schedule_of(set(range(len(self.nodes))))

    def _schedule_of(self, targets: set[int]) -> tuple[NodeStep, ...]:
        needed = set(targets)
        for i in range(len(self.nodes) - 1, -1, -1):  # ancestors: inputs come before their readers
            if i in needed:
                needed.update(j for j in self.nodes[i].inputs if j != INPUT)
        order = sorted(needed)
        last = {i: i for i in order}  # a value nobody reads is dropped at once
        for i in order:
            for j in self.nodes[i].inputs:
                if j != INPUT:
                    last[j] = i
        out = len(self.nodes) - 1  # the network output is never freed
        return tuple(
            NodeStep(i, self.nodes[i], tuple(sorted(j for j in {*self.nodes[i].inputs, i} if j not in (INPUT, out)
                                                    and last[j] == i)))
            for i in order
        )

    @property
    def activations(self) -> tuple[AbstractActivation, ...]:
        return tuple(node.layer for node in self.nodes if isinstance(node.layer, AbstractActivation))

    @property
    def piecewise_linear(self) -> bool:
        return all(a.piecewise_linear for a in self.activations)

    def _tensors(self) -> Iterator[torch.Tensor]:
        for node in self.nodes:
            yield from node.layer._tensors().values()

    @property
    def dtype(self) -> torch.dtype:
        for t in self._tensors():
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    @property
    def device(self) -> torch.device:
        for t in self._tensors():
            return t.device
        return torch.device("cpu")

    def to(self, *, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> "Network":
        """This network with every tensor moved (floating ones take `dtype`); itself if nothing moves."""
        layers = [n.layer.to(dtype=dtype, device=device) for n in self.nodes]
        if all(new is n.layer for new, n in zip(layers, self.nodes)):
            return self  # nothing moved (a Network is immutable: no copy needed)
        return replace(self, nodes=tuple(replace(n, layer=layer) for n, layer in zip(self.nodes, layers)))

    def with_input_shape(self, input_shape: Sequence[int]) -> "Network":
        """A copy with `input_shape` (without the batch dimension) set."""
        return replace(self, input_shape=tuple(int(s) for s in input_shape))

    def require_piecewise_linear(self, what: str) -> None:
        for a in self.activations:
            if not a.piecewise_linear:
                raise TypeError(
                    f"{what} needs a piecewise-linear network, but layer {a.name!r} is "
                    f"{type(a).__name__}({getattr(a, 'function', '')}); supported activations for "
                    "exact methods: ReLU, LeakyReLU, PReLU, ReLU6, Hardtanh, clamp, torch.maximum/minimum, MaxPool2d"
                )

    # -- names -------------------------------------------------------------------------------
    def find(self, names: str | Sequence[str], *, what: str = "layers", activations_only: bool = False) -> list[int]:
        """Node indices for one name or a list, in topological order.

        A module that runs several times (a ReLU reused in a block) is named `m` for all its calls
        and `m#2`, `m#3`, ... for the later ones alone; a ReLU6/Hardtanh `m` is the two ReLUs
        `m#lo` and `m#hi` (`m` names both).
        """
        names = [names] if isinstance(names, str) else list(names)
        pool = [
            i for i, n in enumerate(self.nodes)
            if not activations_only or isinstance(n.layer, AbstractActivation)
        ]
        chosen = set()
        for name in names:
            if not isinstance(name, str):
                raise TypeError(f"{what}: expected layer names (str), got {type(name).__name__}")
            hit = [i for i in pool if self.nodes[i].name == name or self.nodes[i].name.startswith(name + "#")]
            if not hit:
                kinds = "activation layers" if activations_only else "layers"
                known = [self.nodes[i].name for i in pool]
                raise ValueError(
                    f"{what}: {name!r} is not one of the network's {kinds} that forward reaches; "
                    f"expected one of {known[:40]}{' ...' if len(known) > 40 else ''}"
                )
            chosen.update(hit)
        return sorted(chosen)

    # -- evaluation --------------------------------------------------------------------------
    def _run(self, x: torch.Tensor, keep: bool):
        """Yield (index, node, inputs tuple, output); drops values after their last use unless keep."""
        values: dict[int, torch.Tensor] = {INPUT: x}
        for step in self.schedule():
            inputs = tuple(values[j] for j in step.inputs)
            out = step.layer.forward(*inputs)
            yield step.index, step.node, inputs, out
            values[step.index] = out
            if not keep:
                for j in step.free:
                    del values[j]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for *_, out in self._run(x, keep=False):
            pass
        return out

    __call__ = forward

    def values(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The output of every node, index-aligned with `nodes` (all kept: memory grows)."""
        return [out for *_, out in self._run(x, keep=True)]

    def trace(self, x: torch.Tensor) -> Iterator[tuple[AbstractLayer | None, torch.Tensor]]:
        """Yield (layer, its input) for every node, then (None, output).

        For a multi-input node (Sum, Cat) the input is the tuple of its inputs.
        """
        out = x
        for _, node, inputs, out in self._run(x, keep=False):
            yield node.layer, inputs[0] if len(inputs) == 1 else inputs
        yield None, out

    def bits(self, x: torch.Tensor, *, include_output: bool = False, nodes: Sequence[int] | None = None) -> torch.Tensor:
        """bool [B, units]: the activation pattern of each input, activation nodes in topological
        order (only `nodes`, indices from `find`, when given), then the output signs if asked."""
        wanted = None if nodes is None else set(nodes)
        parts = []
        out = x
        for i, node, inputs, out in self._run(x, keep=False):
            if isinstance(node.layer, AbstractActivation) and (wanted is None or i in wanted):
                parts.append(node.layer.bits(inputs[0]))
        if include_output:
            parts.append(out.reshape(out.shape[0], -1) > 0)
        if not parts:
            return torch.zeros(x.shape[0], 0, dtype=torch.bool, device=x.device)
        return torch.cat(parts, dim=1)

    def unit_layout(self, *, include_output: bool = False, nodes: Sequence[int] | None = None) -> tuple[LayerUnits, ...]:
        """Which slice of the pattern belongs to which activation node (needs `input_shape`)."""
        if self.input_shape is None:
            raise ValueError(
                "network.input_shape is unknown; build it with to_network(model, input_shape=...)"
            )
        wanted = None if nodes is None else set(nodes)
        x = torch.zeros((1, *self.input_shape), dtype=self.dtype, device=self.device)
        spans, start = [], 0
        out = x
        with torch.no_grad():
            for i, node, inputs, out in self._run(x, keep=False):
                if isinstance(node.layer, AbstractActivation) and (wanted is None or i in wanted):
                    n = node.layer.bits(inputs[0]).shape[1]
                    spans.append(LayerUnits(node.name, type(node.layer).__name__, start, start + n, i))
                    start += n
            if include_output:
                spans.append(LayerUnits("output", "output", start, start + out[0].numel(), -1))
        return tuple(spans)

    def n_units(self, *, include_output: bool = False) -> int:
        layout = self.unit_layout(include_output=include_output)
        return layout[-1].stop if layout else 0

    def __repr__(self) -> str:
        if self.is_chain:
            inner = ", ".join(f"{type(n.layer).__name__}({n.name!r})" for n in self.nodes)
            return f"Network(input_shape={self.input_shape}, layers=[{inner}])"
        inner = ", ".join(f"{i}: {type(n.layer).__name__}({n.name!r}) <- {list(n.inputs)}" for i, n in enumerate(self.nodes))
        return f"Network(input_shape={self.input_shape}, graph=[{inner}])"
