"""The torch modules reluscope understands, shared by `to_network` and `save_model`/`load_model`.

A module is accepted when it runs a whitelisted class's own `forward` (`type(m).forward is
cls.forward`): a subclass that overrides `forward` computes something else, so it is traced
through with torch.fx instead (and refused if what it does is not supported). Modules with
forward hooks or pre-hooks, and global module hooks, are refused: they change what the module
computes without showing in its forward.
"""

from __future__ import annotations

import torch.nn as nn
from torch.nn.utils import prune
from torch.nn.modules import module as _module
from torch.nn.modules.lazy import LazyModuleMixin

__all__ = ["WHITELIST", "SUPPORTED_MODULES", "whitelisted", "check_hooks", "hint", "DROPOUT", "SMOOTH", "PADS", "ONE_D"]

DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)
SMOOTH = {nn.GELU: "gelu", nn.SiLU: "silu", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid"}
# 1-D layers, computed as their 2-D forms on an input of height 1
ONE_D = (nn.Conv1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d)
# padding modules -> F.pad's mode (ZeroPad2d is a ConstantPad2d with value 0)
PADS = {nn.ZeroPad2d: "constant", nn.ConstantPad2d: "constant", nn.ReflectionPad2d: "reflect",
        nn.ReplicationPad2d: "replicate", nn.CircularPad2d: "circular"}

# Leaf modules, by exact class; Sequential is traced through like any container.
WHITELIST: tuple[type[nn.Module], ...] = (
    nn.Linear, nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.ReLU6, nn.Hardtanh, *SMOOTH, nn.Identity, nn.Flatten, nn.Unflatten,
    *DROPOUT, nn.BatchNorm1d, nn.BatchNorm2d, nn.AvgPool2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d, *PADS, *ONE_D,
    nn.Upsample,
)

SUPPORTED_MODULES = (
    "Linear", "Conv2d", "ReLU", "LeakyReLU", "PReLU (one slope)", "ReLU6", "Hardtanh", "Identity", "Flatten", "Unflatten",
    "Dropout/Dropout1d/Dropout2d/AlphaDropout (eval)", "BatchNorm1d/2d (eval, folded)", "AvgPool2d",
    "AdaptiveAvgPool2d", "MaxPool2d", "Conv1d/MaxPool1d/AvgPool1d/AdaptiveAvgPool1d", "Upsample", "ZeroPad2d/ConstantPad2d/ReflectionPad2d/ReplicationPad2d/CircularPad2d",
    "GELU/SiLU/Tanh/Sigmoid (patterns only)",
    "Sequential and custom modules traced with torch.fx: + - * / by constants (numbers, parameters, buffers), "
    "residual additions, torch.cat/stack, split/chunk, slicing (x[:, :k], x[..., 1:]), mean/sum over non-batch dims, "
    "flatten/view/reshape/squeeze/unsqueeze/transpose/permute keeping the batch, F.linear/conv2d and x @ W with "
    "parameters, F.relu/leaky_relu/relu6/hardtanh/max_pool2d/avg_pool2d/clamp/clamp_min/clamp_max/"
    "adaptive_avg_pool2d/pad/interpolate",
)


def whitelisted(m: nn.Module) -> type[nn.Module] | None:
    """The whitelisted class whose own forward `m` runs, or None."""
    for cls in type(m).__mro__:
        if cls in WHITELIST:
            return cls if type(m).forward is cls.forward else None
    return None


def check_hooks(model: nn.Module) -> None:
    """Refuse global and per-module forward hooks: reluscope would analyse a different function."""
    if _module._global_forward_hooks or _module._global_forward_pre_hooks:
        raise ValueError(
            "model: global forward hooks are registered (torch.nn.modules.module."
            "register_module_forward_hook / _pre_hook); they change every module's output, so "
            "reluscope refuses to analyse the model; remove them first"
        )
    for name, m in model.named_modules():
        if isinstance(m, LazyModuleMixin) and m.has_uninitialized_params():  # its pre-hook sizes it on the first call
            raise ValueError(
                f"model: module {name or '<root>'!r} ({type(m).__name__}) has uninitialized parameters; run the "
                "model once on an input (model(x)) before passing it to reluscope"
            )
        if m._forward_hooks or m._forward_pre_hooks:
            hooks = list(m._forward_pre_hooks.values())
            old_style = [type(h).__name__ for h in hooks if type(h).__name__ in ("WeightNorm", "SpectralNorm")]
            pruned = sorted({h._tensor_name for h in hooks if isinstance(h, prune.BasePruningMethod)})
            if old_style:
                fix = (
                    f"it uses the old torch.nn.utils.{'weight_norm' if old_style[0] == 'WeightNorm' else 'spectral_norm'}: "
                    "use torch.nn.utils.parametrizations.weight_norm / spectral_norm instead (reluscope reads the "
                    "parametrized weight), or remove it (torch.nn.utils.remove_weight_norm / remove_spectral_norm)"
                )
            elif pruned:
                fix = (f"it is pruned with torch.nn.utils.prune, which recomputes {pruned[0]!r} before each call; make the "
                       f"pruning permanent first: torch.nn.utils.prune.remove(module, {pruned[0]!r})")
            else:
                fix = "remove them (handle.remove()) before passing the model to reluscope"
            raise ValueError(
                f"model: module {name or '<root>'!r} ({type(m).__name__}) has forward hooks or "
                f"pre-hooks, which may change what it computes; {fix}"
            )


_NOT_PL = (
    "it is not piecewise linear, so no exact method applies; analyse the layers before it "
    "(reluscope.activations(model, x, layer=...)) or replace it"
)
_HINTS: tuple[tuple[tuple[type[nn.Module], ...], str], ...] = (
    ((nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool1d),
     "use nn.MaxPool2d / nn.MaxPool1d(kernel_size=k, stride=k) with k = input size // output size (the same "
     "windows when it divides), or nn.AdaptiveAvgPool2d / 1d"),
    ((nn.LayerNorm, nn.GroupNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.LocalResponseNorm),
     "it divides by statistics of each input, " + _NOT_PL + "; BatchNorm in eval mode is supported (folded)"),
    ((nn.Softmax, nn.LogSoftmax, nn.Softmin),
     "softmax is not piecewise linear; return the logits (their argmax and signs are what reluscope reads)"),
    ((nn.Conv3d, nn.MaxPool3d, nn.AvgPool3d, nn.BatchNorm3d),
     "only 1-D and 2-D convolutions and pools are supported (3-D ones are not)"),
    ((nn.ELU, nn.SELU, nn.CELU, nn.Softplus, nn.Mish, nn.Hardswish, nn.Hardsigmoid, nn.Softsign, nn.LogSigmoid,
      nn.Tanhshrink), _NOT_PL + " with ReLU, LeakyReLU, ReLU6 or Hardtanh"),
)


def hint(m: nn.Module) -> str:
    """What to change for a torch module off the whitelist."""
    return next((fix for types, fix in _HINTS if isinstance(m, types)), "use a whitelisted module instead")
