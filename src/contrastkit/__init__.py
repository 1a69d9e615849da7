"""contrastkit: contrastive representation learning, from losses to a searchable encoder."""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"


def load_encoder(path: str | os.PathLike, device: str = "cpu") -> Any:
    """The encoder written by ``contrastkit train`` or ``contrastkit export`` (safetensors, nothing unpickled).

    See :func:`contrastkit.backbones.load_encoder`; importing ``contrastkit`` alone stays light.
    """
    from contrastkit.backbones.encoder_file import load_encoder as load

    return load(path, device=device)


__all__ = ["__version__", "load_encoder"]
