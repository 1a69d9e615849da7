"""Encoders (backbones) by name: ``create_backbone("resnet18", small_input=True)`` returns features ``(B, 512)``.

Importing this package registers the built-in backbones: ``resnet18``, ``resnet50``, ``small_cnn``,
``small_cnn_wide``, ``vit_tiny``, ``vit_small`` (images) and ``sequence_cnn`` (1-D sequences, for CPC), and the
wrappers of other libraries' models that ``contrastkit import-encoder`` writes: ``torchvision_model``,
``timm_model``, ``hf_vision``. All are randomly initialised (no pretrained weights are downloaded).
"""

from contrastkit.backbones import (  # noqa: F401  (import registers the backbones)
    hf_encoder,
    resnet,
    sequence_cnn,
    small_cnn,
    timm_model,
    torchvision_model,
    vit,
)
from contrastkit.backbones.encoder import Encoder, ImageEncoder, ImageTextEncoder, SequenceEncoder, TextEncoder
from contrastkit.backbones.encoder_file import EncoderFileError, load_encoder, read_encoder_info, save_encoder
from contrastkit.backbones.registry import Backbone, create_backbone, list_backbones, register_backbone
from contrastkit.backbones.small_cnn import SmallCNN

__all__ = [
    "Backbone",
    "Encoder",
    "EncoderFileError",
    "ImageEncoder",
    "ImageTextEncoder",
    "SequenceEncoder",
    "SmallCNN",
    "TextEncoder",
    "create_backbone",
    "list_backbones",
    "load_encoder",
    "read_encoder_info",
    "register_backbone",
    "save_encoder",
]
