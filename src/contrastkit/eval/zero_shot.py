"""Zero-shot classification with an image-text model: classes described in words, no training on them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from contrastkit.data.class_captions import DEFAULT_TEMPLATES, check_templates, class_prompt_name
from contrastkit.eval._inputs import as_labels
from contrastkit.eval.embed_images import embed_images


@dataclass(frozen=True)
class ZeroShotResult:
    """Accuracy of zero-shot classification."""

    top1: float  # fraction of images whose best-matching class description is the true class
    top5: float  # ... among the 5 best (1.0 when there are at most 5 classes)
    num_classes: int  # classes competed
    chance: float  # top-1 accuracy of guessing: 1 / num_classes
    predictions: Tensor  # (N,) predicted class ids


def _dual(model: Any) -> Any:
    """The dual encoder inside ``model`` (a CLIP method holds it as ``.model``; a loaded ``ImageTextEncoder`` is
    one, with its file's preprocessing)."""
    from contrastkit.backbones.encoder import ImageTextEncoder

    if isinstance(model, ImageTextEncoder):
        return model
    dual = model.model if hasattr(model, "model") and hasattr(model.model, "encode_text") else model
    if not (hasattr(dual, "encode_text") and hasattr(dual, "encode_image")):
        raise TypeError(
            f"{type(model).__name__} is not an image-text model: zero_shot needs encode_image and encode_text "
            "(a CLIP method or an encoder exported from a clip run)"
        )
    return dual


@torch.no_grad()
def zero_shot_classifier(
    model: Any, class_names: Sequence[str], templates: Sequence[str] = DEFAULT_TEMPLATES
) -> Tensor:
    """``(C, E)`` class embeddings: the normalised mean over templates of each class's normalised text embedding
    (Radford et al. 2021's prompt ensembling)."""
    dual = _dual(model)
    templates = check_templates(templates)
    if len(class_names) < 2:
        raise ValueError(f"class_names must name at least 2 classes, got {list(class_names)}")
    weights = []
    for name in class_names:
        texts = [t.format(class_prompt_name(name)) for t in templates]
        weights.append(F.normalize(dual.encode_text(texts).float(), dim=-1).mean(0))  # (E,)
    return F.normalize(torch.stack(weights), dim=-1)  # (C, E)


@torch.no_grad()
def zero_shot(
    model: Any,
    images: Tensor,
    class_names: Sequence[str],
    templates: Sequence[str] = DEFAULT_TEMPLATES,
    labels: Any = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: int | None = None,
    batch_size: int = 512,
) -> ZeroShotResult:
    """Classify ``images`` by the class description their embedding matches best.

    Args:
        model: a CLIP method, or an encoder loaded from a clip run (``contrastkit.load_encoder``).
        images: uint8 ``(N, C, H, W)`` images (prepared like the training views: resized, scaled, normalised with
            ``mean``/``std``, by default the encoder file's), or float ``(N, E)`` image embeddings already computed.
        class_names: names of classes ``0..C-1``.
        templates: sentences with a ``{}`` slot for the class name; class embeddings average over them.
        labels: ``(N,)`` true class ids (required: accuracy is reported).
        mean: image normalisation mean (default: ``model.encoder_info``'s).
        std: image normalisation std (default: ``model.encoder_info``'s).
        size: image size (default: ``model.encoder_info``'s).

    Returns:
        :class:`ZeroShotResult`.
    """
    dual = _dual(model)
    if labels is None:
        raise ValueError("labels is required: zero_shot reports accuracy against the true classes")
    classifier = zero_shot_classifier(dual, class_names, templates)  # (C, E)
    if images.dtype == torch.uint8:
        info = getattr(dual, "encoder_info", {}) or {}
        mean = mean if mean is not None else info.get("mean")
        std = std if std is not None else info.get("std")
        size = size if size is not None else info.get("input_size")
        if mean is None or std is None or size is None:
            raise ValueError("uint8 images need mean, std and size (or a model loaded with its encoder_info)")
        device = classifier.device
        features = embed_images(dual.encode_image, images, tuple(mean), tuple(std), int(size), device, batch_size)
    else:
        features = images.float()  # (N, E)
    y = as_labels("labels", labels, len(features), "images")
    if len(features) == 0:
        raise ValueError("images is empty: nothing to classify")
    if int(y.max()) >= len(class_names) or int(y.min()) < 0:
        raise ValueError(
            f"labels must be in [0, {len(class_names)}) (one per class name), got {int(y.min())}..{int(y.max())}"
        )
    logits = F.normalize(features.to(classifier.device), dim=-1) @ classifier.T  # (N, C)
    ranked = logits.topk(min(5, len(class_names)), dim=1).indices.cpu()  # (N, k)
    hits = ranked == y[:, None]
    return ZeroShotResult(
        top1=float(hits[:, 0].float().mean()),
        top5=float(hits.any(1).float().mean()),
        num_classes=len(class_names),
        chance=1.0 / len(class_names),
        predictions=ranked[:, 0],
    )


def image_text_retrieval(image_embeddings: Any, text_embeddings: Any, ks: Sequence[int] = (1, 5, 10)) -> dict:
    """Image->text and text->image Recall@k, mAP and MRR for paired rows (row ``i`` of each is one pair).

    Returns:
        ``{"image_to_text": {...}, "text_to_image": {...}}`` with :func:`~contrastkit.eval.retrieval_metrics`'s keys.
    """
    from contrastkit.eval.retrieval import retrieval_metrics

    n = len(image_embeddings)
    if len(text_embeddings) != n:
        raise ValueError(f"image_embeddings has {n} rows and text_embeddings {len(text_embeddings)}: pairs must align")
    pairs = (torch.arange(n), torch.arange(n))
    return {
        "image_to_text": retrieval_metrics(image_embeddings, text_embeddings, pairs, ks),
        "text_to_image": retrieval_metrics(text_embeddings, image_embeddings, pairs, ks),
    }
