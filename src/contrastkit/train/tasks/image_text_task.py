"""Image-text runs (CLIP, LiT): images with captions, from a caption listing or from class names and templates,
scored at the end by zero-shot classification and image<->text retrieval (and kNN / probe of the image tower)."""

from __future__ import annotations

from typing import Any

from contrastkit.methods import Method
from contrastkit.train.final_eval import final_evaluation, format_table, held_out_split, image_text_scores
from contrastkit.train.lit_method import LitMethod
from contrastkit.train.tasks.image_task import ImageTask
from contrastkit.train.tasks.task import FinalEvaluation, lit_method, register_task


@register_task("image-text")
class ImageTextTask(ImageTask):
    """An image task whose targets are texts: labelled images get captions from ``data.caption_templates`` (drawn
    per batch and per process in the training step), caption listings bring their own."""

    def setup(self) -> None:
        super().setup()
        if not self.data.has_captions:
            raise ValueError(
                f"method {self.config.method['name']!r} trains on image-text pairs, and {self.data.describe()} has no "
                "captions: give data.path an image-caption listing (.csv/.jsonl with image and caption columns), or "
                "labelled data with data.caption_templates (e.g. ['a photo of a {}.'])"
            )

    def lit_module(self, info: dict[str, Any]) -> LitMethod:
        captions = self.data.captions  # class ids -> captions (None: the batch brings its texts)
        return lit_method(self.config, self.method, self.views, info, use_labels=True, captions=captions)

    def evaluate(self, initial: Method) -> FinalEvaluation | None:
        config, data, method = self.config, self.data, self.method
        scores: dict[str, Any] = {"rows": []}
        test = None
        if data.bank is not None:
            train, test = held_out_split(config, data)
            scores = final_evaluation(config, data, method, initial, self.views, train, test)
        device = next(method.parameters()).device
        scores.update(image_text_scores(config, data, method, initial, self.views.specs[0], device, test))
        return FinalEvaluation(scores, format_table(scores))
