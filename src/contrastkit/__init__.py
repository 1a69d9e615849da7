"""contrastkit: contrastive representation learning, from losses to a searchable encoder.

The package root only re-exports, lazily (``import contrastkit`` imports no torch and no Lightning):

- ``contrastkit.load_encoder``: :func:`contrastkit.backbones.encoder_file.load_encoder`, an encoder file typed by what
  it embeds::

      encoder = contrastkit.load_encoder("runs/demo/encoder.safetensors")
      z = encoder.encode_image(encoder.preprocess(PIL.Image.open("shoe.png"))[None])  # (1, D), L2-normalised

- ``contrastkit.finetune``: :func:`contrastkit.finetuning.finetune_any.finetune_any`, a classifier from an encoder and a
  few labels of images or texts.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {  # name -> (module that defines it, its name there)
    "load_encoder": ("contrastkit.backbones.encoder_file", "load_encoder"),
    "finetune": ("contrastkit.finetuning.finetune_any", "finetune_any"),
}

if TYPE_CHECKING:
    from contrastkit.backbones.encoder_file import load_encoder
    from contrastkit.finetuning.finetune_any import finetune_any as finetune


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'contrastkit' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = ["__version__", "finetune", "load_encoder"]
