"""``contrastkit zeroshot ENCODER --data ...``: classify images by describing their classes in words."""

from __future__ import annotations

import numpy as np

from contrastkit.data.class_captions import DEFAULT_TEMPLATES


def run_zeroshot(
    encoder_path: str,
    data: str,
    classes: str | None = None,
    templates: str | None = None,
    split: str | None = None,
    limit: int = 10000,
    seed: int = 0,
) -> str:
    """Zero-shot top-1/top-5 of a clip-run encoder on labelled ``data``, as a printable report.

    Args:
        encoder_path: an encoder file from a ``clip`` run (both towers).
        data: a labelled built-in data set (its test split by default) or a folder with class sub-folders.
        classes: comma-separated class names in class-id order (default: the data set's own names).
        templates: ``|``-separated sentences with ``{}`` for the class name (default: CLIP-style templates).
        split: the built-in data set's split.
        limit: images scored (a fixed random subset when the data has more).
    """
    from contrastkit.backbones.encoder import ImageTextEncoder
    from contrastkit.backbones.encoder_file import load_encoder
    from contrastkit.data import ArrayImageDataset, load_dataset
    from contrastkit.data.labelled import FixedSizeImages, has_test_split, take
    from contrastkit.eval.zero_shot import zero_shot

    encoder = load_encoder(encoder_path)
    info = encoder.encoder_info
    if not isinstance(encoder, ImageTextEncoder):
        raise ValueError(
            f"{encoder_path}: an {info.get('kind', 'image')} encoder; zero-shot needs image and text towers "
            "(an encoder from a clip run, e.g. contrastkit train clip-fashion-mnist)"
        )
    if split is None and has_test_split(data):
        split = "test"
    dataset = load_dataset(data, split=split) if split else load_dataset(data)
    names = [c.strip() for c in classes.split(",")] if classes else list(getattr(dataset, "classes", None) or [])
    if not names:
        raise ValueError(f"{data}: no class names; pass --classes 'name0,name1,...' in class-id order")
    if getattr(dataset, "classes", None) and len(names) != len(dataset.classes):
        raise ValueError(f"--classes names {len(names)} classes, and {data} has {len(dataset.classes)}")
    if not isinstance(dataset, ArrayImageDataset):
        dataset = FixedSizeImages(dataset, int(info["input_size"]), int(info["in_chans"]))
    order = np.random.default_rng(seed).permutation(len(dataset))[:limit]
    subset = take(dataset, order)
    if len(subset.labels) == 0:
        raise ValueError(f"{data}: no labelled images to classify")
    sentences = [t.strip() for t in templates.split("|")] if templates else list(DEFAULT_TEMPLATES)
    result = zero_shot(encoder, subset.images, names, sentences, subset.labels)
    lines = [
        f"zero-shot on {len(subset.labels)} images of {data} ({len(names)} classes, {len(sentences)} templates)",
        f"  top-1  {result.top1:.4f}   (chance {result.chance:.4f})",
        f"  top-5  {result.top5:.4f}",
    ]
    return "\n".join(lines)
