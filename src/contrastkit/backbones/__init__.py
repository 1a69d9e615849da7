"""Encoders (backbones) by name: ``create_backbone("resnet18", small_input=True)`` returns features ``(B, 512)``.

Importing this package registers the built-in backbones: ``resnet18``, ``resnet50``, ``small_cnn``,
``small_cnn_wide``, ``vit_tiny``, ``vit_small`` (images) and ``sequence_cnn`` (1-D sequences, for CPC). All are
randomly initialised (no pretrained weights are downloaded).
"""

from contrastkit.backbones import resnet, sequence_cnn, small_cnn, vit  # noqa: F401  (import registers the backbones)
from contrastkit.backbones.encoder_file import EncoderFileError, load_encoder, read_encoder_info, save_encoder
from contrastkit.backbones.registry import Backbone, create_backbone, list_backbones, register_backbone
from contrastkit.backbones.small_cnn import SmallCNN

__all__ = [
    "Backbone",
    "EncoderFileError",
    "SmallCNN",
    "create_backbone",
    "list_backbones",
    "load_encoder",
    "read_encoder_info",
    "register_backbone",
    "save_encoder",
]
