"""Small models written the way users write them, for tests: torchvision-style residual blocks,
a VGG-style net with adaptive pooling, a LeNet with a functional forward, a residual MLP.

`BasicBlock` and `Bottleneck` compute what torchvision.models.resnet's do, in the same order and
with the same in-place forms (one in-place ReLU reused, `out += identity`, 1x1-conv downsample
shortcut), so converting them exercises what converting torchvision's own ResNets does. torchvision itself is not a dependency: its PyPI
wheels are built against CUDA torch and do not load next to the CPU wheel.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "BasicBlock", "Bottleneck", "TinyResNet", "tiny_resnet", "tiny_vgg", "LeNetFunctional",
    "ResidualMLP", "randomise_batchnorm", "linear_with_forward",
]


def _conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, kernel_size=1, stride=stride, bias=False)


class _ResidualBlock(nn.Module):
    """torchvision's residual forward: `out = branch(x)`, then `out += identity` (x, or the 1x1-conv
    `downsample` of x) and the block's one in-place ReLU, which the branch uses too."""

    def _shortcut(self, stride: int, downsample: nn.Module | None) -> None:
        # registered after the branch's layers, as torchvision does: the same state-dict order, so
        # `randomise_batchnorm` draws the same statistics for the same seed
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x
        out = self._branch(x)
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        out = self.relu(out)
        return out


class BasicBlock(_ResidualBlock):
    """torchvision's BasicBlock: 3x3 conv-bn-relu, 3x3 conv-bn, shortcut, relu."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self._shortcut(stride, downsample)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.bn2(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """torchvision's Bottleneck: 1x1, 3x3 (strided) and 1x1 (x4 channels) convs with batch norms,
    shortcut, relu."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self._shortcut(stride, downsample)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))


class TinyResNet(nn.Module):
    """torchvision's ResNet forward, narrow: conv-bn-relu-maxpool stem, residual stages (each after
    the first strided, doubling the width, with a 1x1-conv downsample), adaptive average pool,
    flatten, fc. `layers=(2, 2, 2, 2), width=64, num_classes=10` is resnet18's layout (with a 3x3
    stride-1 stem for small inputs): 11.2M parameters."""

    def __init__(self, block: type[BasicBlock | Bottleneck] = BasicBlock, layers: tuple[int, ...] = (1, 1), width: int = 4,
                 num_classes: int = 3, in_channels: int = 3):
        super().__init__()
        self.inplanes = width
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.stages = len(layers)
        for i, blocks in enumerate(layers):
            setattr(self, f"layer{i + 1}", self._make_layer(block, width * 2**i, blocks, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(width * 2 ** (len(layers) - 1) * block.expansion, num_classes)

    def _make_layer(self, block, planes, blocks, stride=1):
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride), nn.BatchNorm2d(planes * block.expansion)
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.fc(x)


def tiny_resnet(block: type[BasicBlock | Bottleneck] = BasicBlock, *, seed: int = 0, **kwargs: object) -> TinyResNet:
    torch.manual_seed(seed)
    return randomise_batchnorm(TinyResNet(block, **kwargs)).eval()


class _VGG(nn.Module):
    def __init__(self, features: nn.Module, num_classes: int):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((2, 2))
        c = [m for m in features if isinstance(m, nn.Conv2d)][-1].out_channels
        self.classifier = nn.Sequential(
            nn.Linear(c * 4, 8), nn.ReLU(True), nn.Dropout(), nn.Linear(8, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def tiny_vgg(*, seed: int = 0, widths: tuple[int | str, ...] = (4, "M", 8, "M"), num_classes: int = 3, in_channels: int = 3) -> nn.Module:
    """torchvision's VGG forward (features, AdaptiveAvgPool2d, flatten, classifier), narrow."""
    torch.manual_seed(seed)
    layers, c = [], in_channels
    for w in widths:
        if w == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(inplace=True)]
            c = w
    return _VGG(nn.Sequential(*layers), num_classes).eval()


class LeNetFunctional(nn.Module):
    """LeNet-5 as usually written: F.relu / F.max_pool2d in forward, x.view(x.size(0), -1)."""

    def __init__(self, width: int = 4, size: int = 12):
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 3)
        self.conv2 = nn.Conv2d(width, width, 3)
        side = ((size - 2) // 2 - 2) // 2
        self.fc1 = nn.Linear(width * side * side, 6)
        self.fc2 = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), (2, 2))
        x = x.view(x.size(0), -1)
        x = F.leaky_relu(self.fc1(x), 0.1)
        return self.fc2(x)


class ResidualMLP(nn.Module):
    """Residual MLP with a BatchNorm after the addition, a concatenation and constant scalings."""

    def __init__(self, d: int = 3, width: int = 6, out: int = 2):
        super().__init__()
        self.inp = nn.Linear(d, width)
        self.fc1 = nn.Linear(width, width)
        self.fc2 = nn.Linear(width, width)
        self.bn = nn.BatchNorm1d(width)
        self.head = nn.Linear(2 * width, out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.inp(x))
        r = h + F.relu(self.fc1(h))
        r = self.bn(r)
        s = 0.5 * r - self.fc2(r) / 3
        return self.head(torch.relu(torch.cat([r, s], dim=1)))


def randomise_batchnorm(model: nn.Module) -> nn.Module:
    """Give every BatchNorm random running statistics and affine parameters (fresh ones are the identity)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.3, 3)
                if m.affine:
                    m.weight.uniform_(-2, 2)
                    m.bias.uniform_(-1, 1)
    return model


def linear_with_forward(forward, *, features: int = 3) -> nn.Module:
    """A module holding one `nn.Linear(features, features)` as `fc`, whose forward is
    `forward(self, x)`: the one-line models of the graph tests (each forward written the way a
    user might)."""

    class WithForward(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(features, features)

    WithForward.forward = forward
    return WithForward()
