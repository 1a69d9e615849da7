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
    data: Any,
    config: Any = None,
    *,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    test: Any = None,
    run_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
) -> Any:
    """Fine-tune an encoder on a few labels of ``data``: a classifier, next to its linear probe and a baseline.

    Images (a labelled built-in data set or a folder of class sub-folders): see
    :func:`contrastkit.finetuning.finetune`, returns a :class:`~contrastkit.finetuning.FinetuneResult`. Texts (a
    ``.jsonl`` / ``.csv`` / ``.tsv`` file of ``{"text", "label"}`` rows, or ``LabelledTexts``; ``test`` an optional
    file of test texts): see :func:`contrastkit.finetuning.finetune_texts`, returns a ``TextFinetuneResult``.
    """
    from contrastkit.finetuning.labelled_texts import is_text_data

    if is_text_data(data):
        from contrastkit.finetuning.finetune_texts import finetune_texts

        if label_fraction is not None:
            raise ValueError("label_fraction is for images; for texts give labels_per_class, or nothing (all rows)")
        return finetune_texts(
            encoder, data, config, test=test, labels_per_class=labels_per_class, run_dir=run_dir, overwrite=overwrite
        )
    from contrastkit.finetuning.finetune import finetune as run

    if test is not None:
        raise ValueError("test= is for texts: an image data set brings its test split (or holds a part out)")
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
