"""The networks a member may be: MONAI's 2-D ResNet (classification) and UNet (segmentation).

Imports torch and MONAI; only training and loading a model import this module. A network is
rebuilt from the plain parameters `network_parameters` returns (recorded in `model.json`), so
loading a model never runs anything but these two constructors.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from mlmanager.engine.vision.spec import Member

ARCHITECTURES = ("resnet", "unet")
# The layer whose activations Grad-CAM weighs: the last residual stage of the ResNet.
GRADCAM_LAYER = "layer4"


def network_parameters(member: Member, *, channels: int, classes: int) -> dict[str, Any]:
    """The constructor arguments of `member`'s network, JSON-friendly."""
    if member.architecture == "resnet":
        return {
            "architecture": "resnet",
            "channels": channels,
            "classes": classes,
            "widths": [member.width * 2**stage for stage in range(4)],
        }
    return {
        "architecture": "unet",
        "channels": channels,
        "classes": classes,
        "widths": [member.width * 2**level for level in range(member.depth)],
    }


def build_network(parameters: dict[str, Any]) -> nn.Module:
    """A fresh network from `network_parameters` output (weights from the global torch seed).

    The ResNet is MONAI's with basic blocks, one per stage (ResNet-10), adapted to small
    images: a 3×3 stem with stride 1 and no max-pooling, so a 32×32 digit still has 4×4
    positions in the last stage instead of MONAI's default 7×7 stride-2 stem + pool, which
    leaves 1×1 by the second stage. The UNet is MONAI's, strides of 2, one residual unit per
    level, batch normalisation (faster on the CPU than MONAI's default instance norm and as
    good on these images).
    """
    from monai.networks.nets import ResNet, UNet

    architecture = parameters.get("architecture")
    channels = _positive_int(parameters.get("channels"))
    classes = _positive_int(parameters.get("classes"))
    widths = [_positive_int(width) for width in parameters.get("widths") or []]
    if architecture == "resnet" and len(widths) == 4:
        return ResNet(
            block="basic",
            layers=[1, 1, 1, 1],
            block_inplanes=widths,
            spatial_dims=2,
            n_input_channels=channels,
            conv1_t_size=3,
            conv1_t_stride=1,
            no_max_pool=True,
            num_classes=classes,
        )
    if architecture == "unet" and len(widths) >= 2:
        return UNet(
            spatial_dims=2,
            in_channels=channels,
            out_channels=classes,
            channels=widths,
            strides=[2] * (len(widths) - 1),
            num_res_units=1,
            norm="batch",
        )
    raise ValueError(f"unknown network parameters {parameters!r}")


def _positive_int(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= 4096:
        raise ValueError(f"not a network size: {value!r}")
    return value
