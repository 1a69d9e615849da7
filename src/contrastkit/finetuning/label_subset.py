"""The labelled subset of a fine-tuning run: class-balanced, drawn with a fixed seed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def balanced_label_subset(
    labels: Any,
    labels_per_class: int | None = None,
    label_fraction: float | None = None,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> np.ndarray:
    """Indices of a class-balanced labelled subset, sorted, the same for the same labels and seed.

    Exactly one of ``labels_per_class`` (N images of every class) and ``label_fraction`` (the fraction F of every
    class, rounded, at least one image per class) is given. Each class's images are drawn without replacement
    from its own seeded permutation, so a larger N extends a smaller one's draw (nested subsets).

    Args:
        labels: (N,) class ids; -1 (unlabelled) entries are never drawn.
        labels_per_class: images per class.
        label_fraction: fraction of each class, in (0, 1].
        seed: the draw's seed.
        class_names: names for the error messages.

    Raises:
        ValueError: neither or both sizes given, a size out of range, no labelled image, or a class with fewer
            images than ``labels_per_class`` (the message names the class and its count).
    """
    if (labels_per_class is None) == (label_fraction is None):
        raise ValueError("give exactly one of labels_per_class and label_fraction")
    if labels_per_class is not None and int(labels_per_class) < 1:
        raise ValueError(f"labels_per_class must be >= 1, got {labels_per_class}")
    if label_fraction is not None and not 0 < float(label_fraction) <= 1:
        raise ValueError(f"label_fraction must be in (0, 1], got {label_fraction}")
    y = np.asarray(labels).astype(np.int64)
    classes = np.unique(y[y >= 0])
    if len(classes) == 0:
        raise ValueError("no labelled images to draw from (every label is -1)")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in classes:
        members = np.flatnonzero(y == c)
        order = members[rng.permutation(len(members))]
        if labels_per_class is not None:
            n = int(labels_per_class)
            if n > len(members):
                name = class_names[c] if class_names is not None and c < len(class_names) else f"class {c}"
                raise ValueError(
                    f"labels_per_class={n}, but {name!r} has only {len(members)} labelled images; "
                    "use a smaller --labels-per-class or --label-fraction"
                )
        else:
            n = max(1, round(float(label_fraction) * len(members)))
        chosen.append(order[:n])
    return np.sort(np.concatenate(chosen))
