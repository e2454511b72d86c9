"""Backbones with a switchable residual connection: EDSR for super-resolution, CIFAR-style ResNets for
classification, a residual U-Net for segmentation (private)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._validation import check_choice, check_finite, check_positive_int
from ._gradnet import ConvGradNet, GradNetResidual
from ._resample import _upsample
from ._residual import RESIDUAL_MODES, ConvBranch, GradResidual, _GatedSkip

__all__ = ["EDSR", "RESIDUALS", "SR_SCALES", "PixelShuffleUpsampler", "ResNet", "UNet", "residual_block"]

#: the ``residual`` switch of every backbone: a :class:`GradResidual` mode or ``"gradnet"``
RESIDUALS = (*RESIDUAL_MODES, "gradnet")
#: super-resolution factors the SR backbones support
SR_SCALES = (2, 3, 4)


def residual_block(branch: nn.Module, channels: int, residual: str = "identity", *, alpha_init: float = 0.0,
                   learn_alpha: bool = True, normalize: str | None = "sample", second_order: bool = False,
                   projection: nn.Module | None = None, fast_path: bool = True) -> nn.Module:
    """The block ``branch`` + skip for the switch ``residual`` (one of :data:`RESIDUALS`): a
    :class:`GradResidual` with that mode, or for ``"gradnet"`` a :class:`GradNetResidual` whose gradient
    term is a :class:`ConvGradNet` on the block's ``channels`` input channels. ``projection`` (for blocks
    that change shape) is dropped for ``residual="none"``, which has no skip; ``fast_path=False`` forces the
    autograd gradient term (for comparisons)."""
    check_choice(residual, "residual", RESIDUALS)
    check_positive_int(channels, "channels")
    if residual == "gradnet":
        return GradNetResidual(branch, ConvGradNet(channels), alpha_init=alpha_init, learn_alpha=learn_alpha,
                               projection=projection)
    return GradResidual(branch, mode=residual, alpha_init=alpha_init, learn_alpha=learn_alpha, normalize=normalize,
                        second_order=second_order, projection=None if residual == "none" else projection,
                        fast_path=fast_path)


def _check_scale(scale) -> int:
    """``scale`` as an int, or ValueError unless it is one of :data:`SR_SCALES` (an integer: 2.0 is refused)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in SR_SCALES:
        raise ValueError(f"scale must be one of the integers {SR_SCALES}, got {scale!r}")
    return scale


class _Backbone(nn.Module):
    """Input checks shared by the backbones: (B, in_channels, H, W), floating, the parameters' dtype and
    device, finite."""

    task: str = ""

    def _check(self, x) -> None:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor of shape (B, {self.in_channels}, H, W), got {type(x).__name__}")
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        ref = next(self.parameters())
        if x.dtype != ref.dtype:
            raise ValueError(f"x has dtype {x.dtype} but the model's parameters are {ref.dtype}")
        if x.device != ref.device:
            raise ValueError(f"x is on {x.device} but the model's parameters are on {ref.device}")
        check_finite(x, "x")

    def gates(self) -> list[float]:
        """s(a) of every gated residual block, in order (empty for ungated residuals)."""
        return [float(m.gate().detach()) for m in self.modules() if isinstance(m, _GatedSkip) and m.alpha is not None]


class PixelShuffleUpsampler(nn.Sequential):
    """Sub-pixel upsampling (Shi et al. 2016) as in EDSR: for scale 2 or 3 one conv C -> C s^2 and a pixel
    shuffle; for scale 4 two x2 stages. (B, C, H, W) -> (B, C, sH, sW)."""

    def __init__(self, channels: int, scale: int):
        check_positive_int(channels, "channels")
        _check_scale(scale)
        factors = [2, 2] if scale == 4 else [scale]
        layers = []
        for f in factors:
            layers += [nn.Conv2d(channels, channels * f * f, 3, padding=1), nn.PixelShuffle(f)]
        super().__init__(*layers)


class EDSR(_Backbone):
    r"""EDSR (Lim et al. 2017) with a switchable residual connection in its body blocks.

        y = tail(up(body(head(x)) + head(x))),   body = [block(ConvBranch(C, scale=res_scale))] * n + conv

    each block being ``residual_block(ConvBranch(C, 3, relu, res_scale), residual)``: ``"identity"`` is
    EDSR, ``"convex"`` the gradient residual (closed-form g) and ``"gradnet"`` the GradNet residual.
    No batch norm, no mean shift (inputs in [0, 1]).

    Start (the default, ``bicubic_skip=True``; not EDSR, VDSR's global residual): the output is

        y = bicubic(x) + tail(up(body(head(x)) + head(x))),

    ``bicubic`` being Pillow's bicubic resize (the SR baseline, see :func:`~gradflow.vision.data.bicubic_resize`),
    and the tail convolution starts at zero (weights and bias; ``zero_tail``, default: as ``bicubic_skip``),
    so the untrained network is exactly the bicubic upsampling, for every residual mode, and training
    learns the missing detail from there. ``bicubic_skip=False`` is the literal EDSR (PyTorch's default
    initialisation everywhere). Defaults are the
    EDSR-baseline sizes (16 blocks of 64 channels, 1.37M parameters at x2) with residual scaling 0.1 (the
    original baseline uses 1.0; its large model 0.1).

    Shapes: (B, in_channels, H, W) -> (B, in_channels, scale H, scale W).

    Example:
        >>> model = EDSR(scale=2, n_blocks=2, channels=8, residual="convex")
        >>> model(torch.rand(1, 3, 12, 12)).shape
        torch.Size([1, 3, 24, 24])
    """

    task = "sr"

    def __init__(self, scale: int = 2, n_blocks: int = 16, channels: int = 64, res_scale: float = 0.1,
                 in_channels: int = 3, residual: str = "identity", alpha_init: float = -3.0, learn_alpha: bool = True,
                 normalize: str | None = "sample", second_order: bool = False, fast_path: bool = True,
                 bicubic_skip: bool = True, zero_tail: bool | None = None):
        super().__init__()
        _check_scale(scale)
        check_positive_int(n_blocks, "n_blocks")
        check_positive_int(channels, "channels")
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.scale, self.residual, self.bicubic_skip = scale, residual, bool(bicubic_skip)
        self.head = nn.Conv2d(in_channels, channels, 3, padding=1)
        blocks = [residual_block(ConvBranch(channels, scale=res_scale), channels, residual, alpha_init=alpha_init,
                                 learn_alpha=learn_alpha, normalize=normalize, second_order=second_order,
                                 fast_path=fast_path)
                  for _ in range(n_blocks)]
        self.body = nn.Sequential(*blocks, nn.Conv2d(channels, channels, 3, padding=1))
        self.upsampler = PixelShuffleUpsampler(channels, scale)
        self.tail = nn.Conv2d(channels, in_channels, 3, padding=1)
        if self.bicubic_skip if zero_tail is None else bool(zero_tail):
            nn.init.zeros_(self.tail.weight)
            nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        features = self.head(x)
        out = self.tail(self.upsampler(self.body(features) + features))
        if self.bicubic_skip:
            out = out + _upsample(x, self.scale)
        return out


def _basic_branch(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
    )


class _Activated(nn.Sequential):
    """block then ReLU (ResNet's post-addition activation)."""

    def __init__(self, block: nn.Module):
        super().__init__(block, nn.ReLU())


class ResNet(_Backbone):
    r"""CIFAR-style ResNet (He et al. 2016) with a switchable residual connection.

    A 3x3 stem (no max-pool), stages of basic blocks relu(BN(conv(relu(BN(conv x))))) + skip) and global
    average pooling into a linear classifier. ``stages`` lists (channels, blocks) per stage; every stage
    after the first halves the resolution in its first block. Shape-changing blocks use the projection
    P = 1x1 convolution with stride 2 and no bias, applied to the whole skip mix: the skip of
    ``residual="convex"`` is P((1 - s(a)) x + s(a) g_hat), P being linear (no batch norm on the skip).
    The gradient term of a branch is computed in closed form with its batch-norm statistics held fixed (see
    :class:`GradResidual`; the full VJP through a training-mode batch norm would vanish).

    Shapes: (B, in_channels, H, W) -> (B, num_classes) logits.

    Example:
        >>> model = ResNet([(8, 1), (16, 1)], num_classes=10, residual="convex")
        >>> model(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 10])
    """

    task = "classification"

    def __init__(self, stages, num_classes: int = 10, in_channels: int = 3, residual: str = "identity",
                 alpha_init: float = 0.0, learn_alpha: bool = True, normalize: str | None = "sample",
                 second_order: bool = False, fast_path: bool = True):
        super().__init__()
        stages = _check_stages(stages)
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        self.residual = residual
        options = {"alpha_init": alpha_init, "learn_alpha": learn_alpha, "normalize": normalize,
                   "second_order": second_order, "fast_path": fast_path}
        width = stages[0][0]
        layers = [nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        for i, (channels, n_blocks) in enumerate(stages):
            for j in range(n_blocks):
                stride = 2 if (i > 0 and j == 0) else 1
                projection = None
                if stride != 1 or width != channels:
                    projection = nn.Conv2d(width, channels, 1, stride=stride, bias=False)
                branch = _basic_branch(width, channels, stride)
                layers.append(_Activated(residual_block(branch, width, residual, projection=projection, **options)))
                width = channels
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.classifier(self.features(x).mean((2, 3)))


def _check_stages(stages) -> list[tuple[int, int]]:
    """``stages`` as a list of (channels, blocks) pairs of integers >= 1 (ValueError naming stages otherwise)."""
    expected = "stages must be a non-empty list of (channels, blocks) pairs of integers >= 1"
    if not isinstance(stages, (list, tuple)) or not stages:
        raise ValueError(f"{expected}, got {stages!r}")
    for i, stage in enumerate(stages):
        if not isinstance(stage, (list, tuple)) or len(stage) != 2:
            raise ValueError(f"{expected}, got stages[{i}] = {stage!r}")
    return [(check_positive_int(c, f"stages[{i}] channels"), check_positive_int(n, f"stages[{i}] blocks"))
            for i, (c, n) in enumerate(stages)]


class UNet(_Backbone):
    r"""A residual U-Net for segmentation with a switchable residual connection.

    Level l (l = 0..depth) has ``width * 2^l`` channels and ``blocks`` residual blocks
    ``relu(residual_block(ConvBranch(c)))``; the encoder goes down with stride-2 3x3 convolutions, the
    decoder up with 2x2 transposed convolutions, concatenates the encoder's features and fuses them with a
    1x1 convolution. Inputs whose sides are not multiples of 2^depth are zero-padded and the output
    cropped back.

    Shapes: (B, in_channels, H, W) -> (B, num_classes, H, W) logits.

    Example:
        >>> model = UNet(num_classes=3, width=8, depth=2, residual="convex")
        >>> model(torch.rand(2, 3, 20, 18)).shape
        torch.Size([2, 3, 20, 18])
    """

    task = "segmentation"

    def __init__(self, num_classes: int = 2, in_channels: int = 3, width: int = 32, depth: int = 3,
                 blocks: int = 1, residual: str = "identity", alpha_init: float = 0.0, learn_alpha: bool = True,
                 normalize: str | None = "sample", second_order: bool = False, fast_path: bool = True):
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_positive_int(num_classes, "num_classes")
        check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth", minimum=0)
        check_positive_int(blocks, "blocks")
        self.residual = residual
        options = {"alpha_init": alpha_init, "learn_alpha": learn_alpha, "normalize": normalize,
                   "second_order": second_order, "fast_path": fast_path}

        def stage(c):
            return nn.Sequential(*[_Activated(residual_block(ConvBranch(c), c, residual, **options))
                                   for _ in range(blocks)])

        widths = [width * 2 ** level for level in range(depth + 1)]
        self.stem = nn.Conv2d(in_channels, width, 3, padding=1)
        self.encoder = nn.ModuleList(stage(c) for c in widths[:-1])
        self.down = nn.ModuleList(nn.Conv2d(c, 2 * c, 3, stride=2, padding=1) for c in widths[:-1])
        self.bottleneck = stage(widths[-1])
        self.up = nn.ModuleList(nn.ConvTranspose2d(2 * c, c, 2, stride=2) for c in widths[:-1])
        self.fuse = nn.ModuleList(nn.Conv2d(2 * c, c, 1) for c in widths[:-1])
        self.decoder = nn.ModuleList(stage(c) for c in widths[:-1])
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        height, width = x.shape[-2:]
        multiple = 2 ** self.depth
        x = F.pad(x, (0, -width % multiple, 0, -height % multiple))
        h = self.stem(x)
        skips = []
        for stage, down in zip(self.encoder, self.down):
            h = stage(h)
            skips.append(h)
            h = down(h)
        h = self.bottleneck(h)
        for up, fuse, stage, skip in zip(self.up[::-1], self.fuse[::-1], self.decoder[::-1], skips[::-1]):
            h = stage(fuse(torch.cat([up(h), skip], dim=1)))
        return self.head(h)[..., :height, :width]

