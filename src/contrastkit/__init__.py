"""contrastkit: contrastive representation learning, from losses to a searchable encoder."""

from __future__ import annotations

import os
from typing import Any

__version__ = "0.1.0"


def load_encoder(path: str | os.PathLike, device: str = "cpu") -> Any:
    """The encoder written by ``contrastkit train``, ``export`` or ``import-encoder`` (safetensors, nothing
    unpickled), typed by what it embeds: an ``ImageEncoder`` (``encode_image``, ``preprocess``), a ``TextEncoder``
    (``encode_text``), an ``ImageTextEncoder`` (both) or a ``SequenceEncoder`` (``contrastkit.backbones``)::

        encoder = contrastkit.load_encoder("runs/demo/encoder.safetensors")
        z = encoder.encode_image(encoder.preprocess(PIL.Image.open("shoe.png"))[None])  # (1, D), L2-normalised

    See :func:`contrastkit.backbones.load_encoder`; importing ``contrastkit`` alone stays light.
    """
    from contrastkit.backbones.encoder_file import load_encoder as load

    return load(path, device=device)


def finetune(
    encoder: Any,
    data: str,
    config: Any = None,
    *,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Any:
    """Fine-tune an encoder on a few labels of ``data``: a classifier, next to its linear probe and scratch.

    See :func:`contrastkit.finetuning.finetune`; returns its :class:`~contrastkit.finetuning.FinetuneResult`.
    """
    from contrastkit.finetuning import finetune as run

    return run(
        encoder,
        data,
        config,
        labels_per_class=labels_per_class,
        label_fraction=label_fraction,
        run_dir=run_dir,
        overwrite=overwrite,
    )


__all__ = ["__version__", "finetune", "load_encoder"]
