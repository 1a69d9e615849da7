"""Captions from class names and templates ("a photo of a {}"), for image-text training on labelled images."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

# CLIP-style prompt templates (Radford et al. 2021 used 80 for ImageNet); these suit small grayscale photos.
DEFAULT_TEMPLATES = (
    "a photo of a {}.",
    "a black and white picture of a {}.",
    "a low resolution photo of a {}.",
    "a grayscale photo of the {}.",
    "a close-up photo of a {}.",
    "a picture of one {}.",
)


def check_templates(templates: Sequence[str]) -> tuple[str, ...]:
    """Refuse an empty list or a template without exactly one ``{}`` slot for the class name."""
    templates = tuple(templates)
    if not templates:
        raise ValueError("templates is empty: give at least one, e.g. 'a photo of a {}.'")
    for template in templates:
        if not isinstance(template, str) or template.count("{}") != 1:
            raise ValueError(f"template {template!r} must be a string with exactly one '{{}}' for the class name")
    return templates


def class_prompt_name(name: str) -> str:
    """A class name as it reads in a sentence: ``"T-shirt/top"`` -> ``"t-shirt or top"``, ``"ankle_boot"`` ->
    ``"ankle boot"``."""
    return name.replace("/", " or ").replace("_", " ").strip().lower()


def class_wordings(classes: Sequence[str], wording: Mapping[str, str] | None = None) -> list[str]:
    """How each class reads in a caption: ``wording[name]`` where given (e.g. ``"Sneaker"`` -> ``"sneaker, a sports
    shoe"``: words a locked text encoder places near the class's visual neighbours), else
    :func:`class_prompt_name`.

    Raises:
        ValueError: a ``wording`` key that is not one of ``classes``, or an empty wording.
    """
    wording = dict(wording or {})
    unknown = sorted(set(wording) - set(classes))
    if unknown:
        raise ValueError(f"class wording for {unknown}: not classes of the data; its classes: {list(classes)}")
    empty = [name for name, words in wording.items() if not str(words).strip()]
    if empty:
        raise ValueError(f"class wording for {empty} is empty: give the words the captions should use")
    return [str(wording[c]).strip() if c in wording else class_prompt_name(c) for c in classes]


class ClassCaptions:
    """Turns class ids into captions: each image gets a template drawn at random, filled with its class name.

    Args:
        classes: class names, indexed by class id.
        templates: caption templates with one ``{}`` slot.
        seed: seed of the template draws (reproducible captions for a resumed or repeated run).
        wording: optional words for some classes in place of their names (see :func:`class_wordings`).
    """

    def __init__(
        self,
        classes: Sequence[str],
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        seed: int = 0,
        wording: Mapping[str, str] | None = None,
    ) -> None:
        if not classes:
            raise ValueError("classes is empty: captions need class names")
        self.classes = class_wordings(classes, wording)
        self.templates = check_templates(templates)
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, labels: Tensor, generator: torch.Generator | None = None) -> list[str]:
        """One caption per label ``(B,)``, its template drawn from ``generator`` (default: this object's own, seeded
        with ``seed``; a trainer passes each batch's own, so that every process draws its own templates and a resumed
        run draws the same ones)."""
        labels = labels.cpu().long()
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must be class ids in [0, {len(self.classes)}), got {labels.min()}..{labels.max()}"
            )
        picks = torch.randint(len(self.templates), (len(labels),), generator=generator or self.generator)  # (B,)
        return [self.templates[int(t)].format(self.classes[int(y)]) for t, y in zip(picks, labels, strict=True)]
