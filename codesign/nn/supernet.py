"""An Once-for-All MobileNetV3-style supernet for 32x32 images, with OFA's weight sharing:

* elastic kernel: the depthwise 7x7 weights; 5x5 and 3x3 kernels are their centre crops passed
  through learned kernel-transform matrices (7->5, 5->3), one per layer;
* elastic expand: the first ``e * C_in`` channels of each block, after channel-importance sorting;
* elastic depth: the first ``d`` blocks of each stage;
* elastic resolution: the input is resized to ``r``.

``subnet(genome)`` extracts a stand-alone ``nn.Module`` whose outputs equal the active path.
"""
from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from accelerators.errors import SpecError

from codesign.space.genome import DEFAULT_SPACE, SearchSpace
from codesign.nn.shape import HEAD, STAGES, STEM, make_divisible


def _act(name):
    return nn.Hardswish(inplace=True) if name == "hswish" else nn.ReLU(inplace=True)


class DynamicBN(nn.BatchNorm2d):
    """BatchNorm over the first C channels of its full width (statistics shared)."""

    def forward(self, x):
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        training = self.training
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c], self.bias[:c],
                            training, self.momentum, self.eps)


class ElasticDW(nn.Module):
    """Depthwise conv with elastic kernel size (OFA kernel transformation)."""

    def __init__(self, channels: int, stride: int, kernels=(3, 5, 7)):
        super().__init__()
        self.kernels = tuple(sorted(kernels))
        kmax = self.kernels[-1]
        self.stride = stride
        self.weight = nn.Parameter(torch.empty(channels, 1, kmax, kmax))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        # one transform per step down, e.g. 7->5 (25x25) and 5->3 (9x9), initialised to identity
        self.transforms = nn.ParameterDict({
            f"{a}to{b}": nn.Parameter(torch.eye(b * b))
            for a, b in zip(self.kernels[::-1][:-1], self.kernels[::-1][1:])})

    def kernel(self, c: int, k: int) -> torch.Tensor:
        w = self.weight[:c]
        size = self.kernels[-1]
        for a, b in zip(self.kernels[::-1][:-1], self.kernels[::-1][1:]):
            if size <= k:
                break
            lo = (a - b) // 2
            w = w[:, :, lo:lo + b, lo:lo + b].reshape(c, b * b) @ self.transforms[f"{a}to{b}"]
            w = w.reshape(c, 1, b, b)
            size = b
        return w

    def forward(self, x, k: int):
        c = x.shape[1]
        return F.conv2d(x, self.kernel(c, k), None, self.stride, k // 2, 1, c)


class ElasticSE(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        mid = make_divisible(channels // 4)
        self.fc1 = nn.Conv2d(channels, mid, 1)
        self.fc2 = nn.Conv2d(mid, channels, 1)

    def forward(self, x):
        c = x.shape[1]
        mid = make_divisible(c // 4)
        s = x.mean((2, 3), keepdim=True)
        s = F.relu(F.conv2d(s, self.fc1.weight[:mid, :c], self.fc1.bias[:mid]))
        s = F.hardsigmoid(F.conv2d(s, self.fc2.weight[:c, :mid], self.fc2.bias[:c]))
        return x * s


class ElasticBlock(nn.Module):
    """Inverted bottleneck: 1x1 expand, elastic depthwise, optional SE, 1x1 project."""

    def __init__(self, cin: int, cout: int, stride: int, se: bool, act: str, space: SearchSpace):
        super().__init__()
        cmid = cin * max(space.expands)
        self.cin, self.cout, self.stride = cin, cout, stride
        self.expand = nn.Conv2d(cin, cmid, 1, bias=False)
        self.bn1 = DynamicBN(cmid)
        self.dw = ElasticDW(cmid, stride, space.kernels)
        self.bn2 = DynamicBN(cmid)
        self.se = ElasticSE(cmid) if se else None
        self.project = nn.Conv2d(cmid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.act = _act(act)
        self.residual = stride == 1 and cin == cout

    def forward(self, x, k: int, e: int):
        c = self.cin * e
        y = self.act(self.bn1(F.conv2d(x, self.expand.weight[:c])))
        y = self.act(self.bn2(self.dw(y, k)))
        if self.se is not None:
            y = self.se(y)
        y = self.bn3(F.conv2d(y, self.project.weight[:, :c]))
        return x + y if self.residual else y

    @torch.no_grad()
    def sort_channels(self):
        """OFA channel-importance sorting: order the hidden channels by the L1 norm of their
        projection weights, so that the first e*C_in are the most important."""
        imp = self.project.weight.abs().sum((0, 2, 3))
        order = torch.argsort(imp, descending=True)
        self.project.weight.copy_(self.project.weight[:, order])
        self.expand.weight.copy_(self.expand.weight[order])
        for bn in (self.bn1, self.bn2):
            for t in (bn.weight, bn.bias, bn.running_mean, bn.running_var):
                t.copy_(t[order])
        self.dw.weight.copy_(self.dw.weight[order])
        if self.se is not None:
            self.se.fc1.weight.copy_(self.se.fc1.weight[:, order])
            self.se.fc2.weight.copy_(self.se.fc2.weight[order])
            self.se.fc2.bias.copy_(self.se.fc2.bias[order])


def resize(x: torch.Tensor, r: int) -> torch.Tensor:
    """Inputs at resolution ``r`` (bilinear), as the supernet does for a genome."""
    if x.shape[-1] == r:
        return x
    return F.interpolate(x, size=(r, r), mode="bilinear", align_corners=False)


class Supernet(nn.Module):
    def __init__(self, num_classes: int = 10, space: SearchSpace = DEFAULT_SPACE):
        super().__init__()
        assert space.stages == len(STAGES)
        self.space = space
        self.stem = nn.Sequential(nn.Conv2d(3, STEM, 3, 1, 1, bias=False), nn.BatchNorm2d(STEM), nn.Hardswish())
        # the first block is fixed (MobileNetV3: depthwise 3x3 + project, no expansion)
        self.first = nn.Sequential(nn.Conv2d(STEM, STEM, 3, 1, 1, groups=STEM, bias=False), nn.BatchNorm2d(STEM),
                                   nn.ReLU(inplace=True), nn.Conv2d(STEM, STEM, 1, bias=False), nn.BatchNorm2d(STEM))
        blocks, cin = [], STEM
        for width, stride, se, act in STAGES:
            for b in range(space.max_depth):
                blocks.append(ElasticBlock(cin, width, stride if b == 0 else 1, se, act, space))
                cin = width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Sequential(nn.Conv2d(cin, HEAD, 1, bias=False), nn.BatchNorm2d(HEAD), nn.Hardswish())
        self.classifier = nn.Linear(HEAD, num_classes)

    def forward(self, x, genome: dict):
        x = self._stem(resize(x, genome["r"]))
        for _, i in self.space.active_blocks(genome):
            x = self.blocks[i](x, genome["ks"][i], genome["e"][i])
        x = self.head(x).mean((2, 3))
        return self.classifier(x)

    def _stem(self, x):
        x = self.stem(x)
        return x + self.first(x)

    @torch.no_grad()
    def sort_channels(self):
        for b in self.blocks:
            b.sort_channels()

    @torch.no_grad()
    def subnet(self, genome: dict) -> "SubNet":
        """A stand-alone network with copies of the active weights (kernels transformed)."""
        return SubNet(self, self.space.validate(genome))


class SubNet(nn.Module):
    def __init__(self, sup: Supernet, genome: dict):
        super().__init__()
        self.genome = dict(genome)
        self.r = genome["r"]
        self.stem = copy.deepcopy(sup.stem)
        self.first = copy.deepcopy(sup.first)
        layers = []
        for _, i in sup.space.active_blocks(genome):
            layers.append(_static_block(sup.blocks[i], genome["ks"][i], genome["e"][i]))
        self.blocks = nn.ModuleList(layers)
        self.head = copy.deepcopy(sup.head)
        self.classifier = copy.deepcopy(sup.classifier)

    def forward(self, x):
        """``x`` at the genome's resolution ``self.r`` (see :func:`resize`)."""
        x = self.stem(x)
        x = x + self.first(x)
        for b in self.blocks:
            x = b(x)
        return self.classifier(self.head(x).mean((2, 3)))


class StaticBlock(nn.Module):
    def __init__(self, expand, bn1, dw, bn2, se, project, bn3, act, residual):
        super().__init__()
        self.expand, self.bn1, self.dw, self.bn2 = expand, bn1, dw, bn2
        self.se, self.project, self.bn3, self.act, self.residual = se, project, bn3, act, residual

    def forward(self, x):
        y = self.act(self.bn1(self.expand(x)))
        y = self.act(self.bn2(self.dw(y)))
        if self.se is not None:
            y = self.se(y)
        y = self.bn3(self.project(y))
        return x + y if self.residual else y


class StaticSE(nn.Module):
    def __init__(self, fc1, fc2):
        super().__init__()
        self.fc1, self.fc2 = fc1, fc2

    def forward(self, x):
        s = F.relu(self.fc1(x.mean((2, 3), keepdim=True)))
        return x * F.hardsigmoid(self.fc2(s))


def _bn_slice(bn: nn.BatchNorm2d, c: int) -> nn.BatchNorm2d:
    out = nn.BatchNorm2d(c, eps=bn.eps, momentum=bn.momentum)
    for name in ("weight", "bias"):
        getattr(out, name).data.copy_(getattr(bn, name).data[:c])
    out.running_mean.copy_(bn.running_mean[:c])
    out.running_var.copy_(bn.running_var[:c])
    out.num_batches_tracked.copy_(bn.num_batches_tracked)
    return out


def _static_block(b: ElasticBlock, k: int, e: int) -> StaticBlock:
    c = b.cin * e
    expand = nn.Conv2d(b.cin, c, 1, bias=False)
    expand.weight.data.copy_(b.expand.weight.data[:c])
    dw = nn.Conv2d(c, c, k, b.stride, k // 2, groups=c, bias=False)
    dw.weight.data.copy_(b.dw.kernel(c, k).detach())
    se = None
    if b.se is not None:
        mid = make_divisible(c // 4)
        fc1, fc2 = nn.Conv2d(c, mid, 1), nn.Conv2d(mid, c, 1)
        fc1.weight.data.copy_(b.se.fc1.weight.data[:mid, :c])
        fc1.bias.data.copy_(b.se.fc1.bias.data[:mid])
        fc2.weight.data.copy_(b.se.fc2.weight.data[:c, :mid])
        fc2.bias.data.copy_(b.se.fc2.bias.data[:c])
        se = StaticSE(fc1, fc2)
    project = nn.Conv2d(c, b.cout, 1, bias=False)
    project.weight.data.copy_(b.project.weight.data[:, :c])
    return StaticBlock(expand, _bn_slice(b.bn1, c), dw, _bn_slice(b.bn2, c), se, project,
                       copy.deepcopy(b.bn3), copy.deepcopy(b.act), b.residual)


def load_supernet(path, num_classes: int = 10) -> "Supernet":
    """A supernet from a state_dict file (or a training checkpoint's model), in eval mode; a file
    that is not one is a SpecError naming it."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:                       # pickle / zip errors of all kinds
        first = next((l.strip() for l in str(e).splitlines() if l.strip()), "")
        raise SpecError("--weights", f"not a readable torch state_dict ({type(e).__name__}: {first[:120]})",
                        str(path)) from None
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]                   # a training checkpoint
    net = Supernet(num_classes=num_classes)
    try:
        net.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise SpecError("--weights", f"not a supernet state_dict ({msg})", str(path)) from None
    return net.eval()
