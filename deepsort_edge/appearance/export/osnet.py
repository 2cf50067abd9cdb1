"""OSNet, the omni-scale person re-identification network, for exporting its checkpoints.

Written from the paper (Zhou et al., "Omni-Scale Feature Learning for Person
Re-Identification", ICCV 2019). Its parts, as the paper describes them:

- **Lite 3x3**: a linear 1x1 convolution followed by a depthwise 3x3
  convolution, batch norm and ReLU (a factorised 3x3 convolution).
- **Omni-scale residual block**: a 1x1 reduction to a quarter of the output
  channels, then T = 4 streams of 1, 2, 3 and 4 stacked Lite 3x3 layers
  (receptive fields 3, 5, 7 and 9), each scaled channel-wise by one
  **unified aggregation gate** (a small two-layer network on the globally
  pooled stream, shared by the streams), summed, expanded by a linear 1x1,
  added to the (projected) input and passed through a ReLU.
- **Network** for width multiplier ``beta`` (x1.0: 64 / 256 / 384 / 512
  channels): a 7x7 stride-2 convolution and 3x3 stride-2 max pooling, three
  stages of two blocks each (the first two followed by a 1x1 transition
  convolution and 2x2 average pooling), a final 1x1 convolution, global
  average pooling and a 512-d fully connected layer with batch norm and ReLU,
  whose output is the appearance feature.

The layers carry the parameter names of torchreid's implementation (the
layout of the checkpoints torchreid and boxmot publish: ``conv1.conv.weight``,
``conv2.0.conv2a.conv1.weight``, ``conv2.0.gate.fc1.bias``, ``conv2.2.0.conv.weight``,
``fc.0.weight``, ``fc.1.running_var``, ``classifier.weight``), so
:func:`load_osnet_checkpoint` loads those files directly. The classifier is
not part of the module: its keys are dropped, whatever number of training
identities it has. Needs torch (the export extra).

Example:
    >>> model = build_osnet("osnet_x0_25")  # doctest: +SKIP
    >>> load_osnet_checkpoint(model, "osnet_x0_25_msmt17.pth")  # doctest: +SKIP
    ('classifier.weight', 'classifier.bias')
    >>> model(torch.zeros(2, 3, 256, 128)).shape  # doctest: +SKIP
    torch.Size([2, 512])
"""

from __future__ import annotations

import os

import torch
from torch import nn

from deepsort_edge.appearance.export.checkpoints import read_state_dict

__all__ = [
    "OSNET_CHANNELS",
    "OSNET_FEATURE_DIM",
    "OSNET_INPUT_SIZE",
    "OSNet",
    "build_osnet",
    "load_osnet_checkpoint",
]

#: Channels after the stem and after each of the three stages, per width multiplier.
OSNET_CHANNELS: dict[str, tuple[int, int, int, int]] = {
    "osnet_x1_0": (64, 256, 384, 512),
    "osnet_x0_75": (48, 192, 288, 384),
    "osnet_x0_5": (32, 128, 192, 256),
    "osnet_x0_25": (16, 64, 96, 128),
}
#: Length of the feature vector (the fully connected layer).
OSNET_FEATURE_DIM = 512
#: Crop ``(height, width)`` the published person ReID checkpoints were trained on.
OSNET_INPUT_SIZE = (256, 128)

_STREAMS = 4  # T in the paper
_BOTTLENECK = 4  # a block's streams run at a quarter of its output channels
_GATE_REDUCTION = 16  # hidden units of the aggregation gate: channels / 16
_CLASSIFIER = "classifier."
_INSTANCE_NORM = ".IN."  # torchreid's name for the instance norm of the osnet_ain / ibn variants


class _ConvBN(nn.Module):
    """Convolution (no bias) + batch norm, with an optional ReLU."""

    def __init__(
        self, cin: int, cout: int, kernel: int = 1, stride: int = 1, relu: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU() if relu else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class _Lite3x3(nn.Module):
    """Lite 3x3: linear pointwise convolution, depthwise 3x3, batch norm, ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv2(self.conv1(x))))


class _AggregationGate(nn.Module):
    """Channel weights in (0, 1) from a stream's pooled response (one gate for all streams)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // _GATE_REDUCTION
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(pooled))))


class _OmniScaleBlock(nn.Module):
    """Residual block whose T streams see scales 3, 5, 7, 9, mixed by the aggregation gate."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // _BOTTLENECK
        self.conv1 = _ConvBN(cin, mid)
        # Stream t stacks t Lite 3x3 layers; torchreid names them conv2a..conv2d.
        self.conv2a = _Lite3x3(mid)
        self.conv2b = nn.Sequential(*(_Lite3x3(mid) for _ in range(2)))
        self.conv2c = nn.Sequential(*(_Lite3x3(mid) for _ in range(3)))
        self.conv2d = nn.Sequential(*(_Lite3x3(mid) for _ in range(_STREAMS)))
        self.gate = _AggregationGate(mid)
        self.conv3 = _ConvBN(mid, cout, relu=False)
        self.downsample = _ConvBN(cin, cout, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reduced = self.conv1(x)
        mixed = self.gate(self.conv2a(reduced)) + self.gate(self.conv2b(reduced))
        mixed = mixed + self.gate(self.conv2c(reduced)) + self.gate(self.conv2d(reduced))
        shortcut = x if self.downsample is None else self.downsample(x)
        return torch.relu(self.conv3(mixed) + shortcut)


def _stage(cin: int, cout: int, transition: bool) -> nn.Sequential:
    layers: list[nn.Module] = [_OmniScaleBlock(cin, cout), _OmniScaleBlock(cout, cout)]
    if transition:  # 1x1 convolution + 2x2 average pooling halve the resolution
        layers.append(nn.Sequential(_ConvBN(cout, cout), nn.AvgPool2d(2, stride=2)))
    return nn.Sequential(*layers)


class OSNet(nn.Module):
    """OSNet without its classifier: ``[N, 3, H, W]`` normalised RGB -> ``[N, 512]`` features.

    Args:
        channels: channels after the stem and after stages 2, 3 and 4
            (:data:`OSNET_CHANNELS`).
        feature_dim: length of the feature vector.

    Example:
        >>> OSNet(OSNET_CHANNELS["osnet_x0_25"])(torch.zeros(1, 3, 256, 128)).shape  # doctest: +SKIP
        torch.Size([1, 512])
    """

    def __init__(
        self, channels: tuple[int, int, int, int], feature_dim: int = OSNET_FEATURE_DIM
    ) -> None:
        super().__init__()
        stem, c2, c3, c4 = channels
        self.conv1 = _ConvBN(3, stem, kernel=7, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = _stage(stem, c2, transition=True)
        self.conv3 = _stage(c2, c3, transition=True)
        self.conv4 = _stage(c3, c4, transition=False)
        self.conv5 = _ConvBN(c4, c4)
        self.fc = nn.Sequential(nn.Linear(c4, feature_dim), nn.BatchNorm1d(feature_dim), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.conv1(x))
        x = self.conv5(self.conv4(self.conv3(self.conv2(x))))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build_osnet(name: str) -> OSNet:
    """An OSNet of the named width (``osnet_x1_0``, ``osnet_x0_75``, ``osnet_x0_5``, ``osnet_x0_25``).

    The weights are random until a checkpoint is loaded
    (:func:`load_osnet_checkpoint`); the module is in eval mode.

    Raises:
        ValueError: for any other name.
    """
    if name not in OSNET_CHANNELS:
        raise ValueError(
            f"model: {name!r} is not an OSNet width; choose one of {sorted(OSNET_CHANNELS)}"
        )
    return OSNet(OSNET_CHANNELS[name]).eval()


def _width_of(state: dict[str, torch.Tensor]) -> str | None:
    """The OSNet width whose stem matches the checkpoint's, if any."""
    stem = state.get("conv1.conv.weight")
    if stem is None or stem.ndim != 4:
        return None
    return next((n for n, c in OSNET_CHANNELS.items() if c[0] == stem.shape[0]), None)


def _names(keys: list[str], limit: int = 3) -> str:
    more = f" (+{len(keys) - limit} more)" if len(keys) > limit else ""
    return ", ".join(keys[:limit]) + more


def load_osnet_checkpoint(model: OSNet, checkpoint: str | os.PathLike[str]) -> tuple[str, ...]:
    """Load a torchreid / boxmot OSNet checkpoint into ``model`` (strict, classifier dropped).

    Accepts a plain state dict or one wrapped in ``state_dict`` / ``model``,
    with or without DataParallel ``module.`` prefixes, and a classifier of any
    size. ``num_batches_tracked`` entries may be absent (older checkpoints).

    Args:
        model: from :func:`build_osnet`.
        checkpoint: ``.pth``/``.pt``/``.tar`` file (loaded with ``weights_only=True``)
            or ``.safetensors``.

    Returns:
        The checkpoint keys that were dropped (the classifier).

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: in one line, if the checkpoint is not a state dict, is for
            another OSNet width, or lacks or adds weights.
    """
    state = read_state_dict(checkpoint)
    ignored = tuple(k for k in state if k.startswith(_CLASSIFIER))
    state = {k: v for k, v in state.items() if not k.startswith(_CLASSIFIER)}
    expected = model.state_dict()
    channels = tuple(model.conv1.conv.weight.shape[:1]) + tuple(
        stage[1].conv3.conv.weight.shape[0] for stage in (model.conv2, model.conv3, model.conv4)
    )
    arch = next((n for n, c in OSNET_CHANNELS.items() if c == channels), "this OSNet")
    found = _width_of(state)
    if found is not None and found != arch:
        raise ValueError(
            f"checkpoint {checkpoint} is an {found} checkpoint (stem of "
            f"{OSNET_CHANNELS[found][0]} channels), not {arch}; export it as {found}"
        )
    unexpected = sorted(k for k in state if k not in expected)
    missing = sorted(
        k for k in expected if k not in state and not k.endswith("num_batches_tracked")
    )
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"lacks {len(missing)} {arch} weights ({_names(missing)})")
        if unexpected:
            parts.append(f"has {len(unexpected)} keys {arch} does not ({_names(unexpected)})")
        hint = ""
        if any(_INSTANCE_NORM in k for k in unexpected):
            hint = "; instance-norm variants (osnet_ain_*, osnet_ibn_*) are not supported"
        raise ValueError(
            f"checkpoint {checkpoint} is not a plain {arch}: it " + " and ".join(parts) + hint
        )
    mismatched = [
        f"{k} {tuple(v.shape)} vs {tuple(expected[k].shape)}"
        for k, v in state.items()
        if tuple(v.shape) != tuple(expected[k].shape)
    ]
    if mismatched:
        raise ValueError(
            f"checkpoint {checkpoint} does not fit {arch}: shapes differ for {_names(mismatched)}"
        )
    model.load_state_dict(state, strict=False)  # only num_batches_tracked may be left out
    return ignored
