"""EfficientNet-PyTorch checkpoints (``efficientnet_pytorch`` / ``efficientnet_lite_pytorch``: ``_conv_stem``,
``_blocks.N._depthwise_conv``, ...) renamed for the matching timm architecture (``tf_efficientnet_b0``,
``tf_efficientnet_lite0``, ...: ``conv_stem``, ``blocks.S.I.conv_dw``, ...).

The two libraries hold the same tensors (both ported from TensorFlow's EfficientNet with "same" padding, batch-norm
epsilon 1e-3): one flat list of blocks there, stages of blocks here, and other names for each layer. A block with
an expansion convolution is timm's inverted residual; a block without one (expansion 1) is timm's depthwise
separable convolution, whose two batch norms are named ``bn1`` / ``bn2`` where the other's three are
``bn1`` / ``bn2`` / ``bn3``.
"""

from __future__ import annotations

from torch import Tensor, nn

STEM_AND_HEAD = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
EXPANDED_BLOCK = {  # a block with an expansion convolution (timm's InvertedResidual)
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
DEPTHWISE_BLOCK = {  # a block without one (timm's DepthwiseSeparableConv)
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_se_reduce": "se.conv_reduce",
    "_se_expand": "se.conv_expand",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}


def is_efficientnet_pytorch(state: dict[str, Tensor]) -> bool:
    """Whether ``state`` has EfficientNet-PyTorch's key layout (its stem convolution is ``_conv_stem``)."""
    return "_conv_stem.weight" in state


def efficientnet_pytorch_to_timm(state: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """``state`` with EfficientNet-PyTorch's names renamed to those of timm EfficientNet ``model`` (its stages give
    the flat block index's place). Keys that have no counterpart keep their names, so loading them strictly names
    them as unexpected (and timm's keys left unfilled as missing): a checkpoint of another depth or another
    architecture is refused by name, not half loaded."""
    places = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]  # flat -> timm
    expanded = {key.split(".")[1] for key in state if key.startswith("_blocks.") and "._expand_conv." in key}
    renamed: dict[str, Tensor] = {}
    for key, value in state.items():
        renamed[_timm_name(key, places, expanded) or key] = value
    return renamed


def _timm_name(key: str, places: list[str], expanded: set[str]) -> str | None:
    """timm's name of EfficientNet-PyTorch key ``key``, or None where there is none."""
    parts = key.split(".")
    if parts[0] in STEM_AND_HEAD:
        return ".".join([STEM_AND_HEAD[parts[0]], *parts[1:]])
    if parts[0] != "_blocks" or len(parts) < 4 or not parts[1].isdigit() or int(parts[1]) >= len(places):
        return None
    layers = EXPANDED_BLOCK if parts[1] in expanded else DEPTHWISE_BLOCK
    if parts[2] not in layers:
        return None
    return ".".join([places[int(parts[1])], layers[parts[2]], *parts[3:]])
