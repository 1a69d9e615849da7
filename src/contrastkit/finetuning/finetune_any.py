"""Fine-tuning on few labels of images or texts, by what the data is: the function ``contrastkit.finetune`` is."""

from __future__ import annotations

import os
from typing import Any

from contrastkit.finetuning.finetune import finetune as finetune_images
from contrastkit.finetuning.finetune_texts import finetune_texts
from contrastkit.finetuning.labelled_texts import is_text_data


def finetune_any(
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
    if is_text_data(data):
        if label_fraction is not None:
            raise ValueError("label_fraction is for images; for texts give labels_per_class, or nothing (all rows)")
        return finetune_texts(
            encoder, data, config, test=test, labels_per_class=labels_per_class, run_dir=run_dir, overwrite=overwrite
        )
    if test is not None:
        raise ValueError("test= is for texts: an image data set brings its test split (or holds a part out)")
    return finetune_images(
        encoder,
        data,
        config,
        labels_per_class=labels_per_class,
        label_fraction=label_fraction,
        run_dir=run_dir,
        overwrite=overwrite,
    )


__all__ = ["finetune_any"]
