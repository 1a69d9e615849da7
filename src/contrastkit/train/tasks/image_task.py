"""Image self-supervised runs: views of unlabelled (or labelled) images, scored at the end by kNN and a linear probe
next to the random-init encoder and raw pixels."""

from __future__ import annotations

from typing import Any

import torch

from contrastkit.backbones import create_backbone
from contrastkit.methods import Method, create_method
from contrastkit.train.config import ConfigError, RunConfig, config_to_dict
from contrastkit.train.data_module import RunDataModule
from contrastkit.train.final_eval import final_evaluation, format_table, held_out_split
from contrastkit.train.monitor import EmbeddingMonitor
from contrastkit.train.tasks.task import FinalEvaluation, Task, register_task
from contrastkit.views import MultiViews, create_views


def build_views(config: RunConfig, channels: int, image_size: int) -> MultiViews:
    """The views recipe of ``config.views``; ``input_size`` / ``channels`` unset (None) mean the data's own. From
    ``backbone.pretrained``, unset ``mean`` / ``std`` are the encoder file's: a pretrained network sees its inputs
    normalised as in its pretraining (ImageNet's, or TensorFlow's 0.5 / 0.5 for EfficientNet-Lite)."""
    params = dict(config.views)
    name = params.pop("recipe")
    channels = params.pop("channels", None) or channels
    input_size = params.pop("input_size", None) or image_size
    if config.backbone.pretrained and "mean" in params and params["mean"] is None and params.get("std") is None:
        from contrastkit.backbones.encoder_file import read_encoder_info

        start = read_encoder_info(config.backbone.pretrained)
        if start.get("mean") and len(start["mean"]) == channels:
            params["mean"], params["std"] = list(start["mean"]), list(start["std"])
    return create_views(name, channels=channels, input_size=input_size, **params)


def build_method(config: RunConfig, in_chans: int) -> Method:
    """The backbone of ``config.backbone`` (or the pretrained one it names) inside the method of ``config.method``."""
    params = dict(config.method)
    if config.backbone.pretrained:
        backbone = pretrained_backbone(config.backbone.pretrained, in_chans)
    else:
        backbone = create_backbone(config.backbone.name, in_chans=in_chans, small_input=config.backbone.small_input)
    return create_method(params.pop("name"), backbone, **params)


def pretrained_backbone(path: str, in_chans: int) -> torch.nn.Module:
    """The image backbone of encoder file ``path`` (of a clip run: its image tower), in training mode."""
    from contrastkit.backbones.encoder import ImageEncoder, ImageTextEncoder
    from contrastkit.backbones.encoder_file import load_encoder

    encoder = load_encoder(path)
    if not isinstance(encoder, ImageEncoder):
        raise ConfigError(f"backbone.pretrained: {path} is a {encoder.kind} encoder; an image encoder is needed")
    if int(encoder.encoder_info["in_chans"]) != in_chans:
        raise ConfigError(
            f"backbone.pretrained: {path} takes {encoder.encoder_info['in_chans']}-channel images and the views have "
            f"{in_chans}; set views.channels={encoder.encoder_info['in_chans']}"
        )
    backbone = encoder.model.image_encoder if isinstance(encoder, ImageTextEncoder) else encoder.model
    return backbone.train()


def encoder_info(config: RunConfig, views: MultiViews, in_chans: int) -> dict[str, Any]:
    """The metadata stored with an exported image encoder (how to rebuild it and how to feed it)."""
    spec = views.specs[0]
    architecture = {"backbone": config.backbone.name, "small_input": config.backbone.small_input}
    if config.backbone.pretrained:  # the architecture of the file it started from
        from contrastkit.backbones.encoder_file import read_encoder_info

        start = read_encoder_info(config.backbone.pretrained)
        architecture = {k: start[k] for k in ("backbone", "small_input", "backbone_kwargs") if k in start}
        architecture["pretrained"] = str(config.backbone.pretrained)
    return {
        **architecture,
        "in_chans": in_chans,
        "input_size": spec.size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "method": config.method["name"],
        "config": config_to_dict(config),
    }


@register_task("images")
class ImageTask(Task):
    """Self-supervised (or, for SupCon, supervised) training on views of images: built-in data sets, folders,
    listings. The final evaluation scores kNN and a linear probe on held-out labelled images."""

    def setup(self) -> None:
        config = self.config
        self.data = RunDataModule(config.data, config.seed, config.monitor.bank_size, config.monitor.query_size)
        self.views = build_views(config, self.data.channels, self.data.image_size)
        self.method = build_method(config, in_chans=self.views.specs[0].channels)
        if self.method.uses_labels and not self.data.classes:
            raise ValueError(
                f"method {config.method['name']!r} needs labelled data, and {self.data.describe()} has no labels"
            )

    def encoder_info(self) -> dict[str, Any]:
        return {**encoder_info(self.config, self.views, self.views.specs[0].channels), **self.method.export_module()[1]}

    def callbacks(self) -> list:
        spec, data = self.views.specs[0], self.data
        self.monitor = EmbeddingMonitor(
            self.config.monitor, data.bank, data.queries, data.health_images(), spec.mean, spec.std, spec.size
        )
        return [self.monitor]

    def history(self) -> list[dict[str, float]]:
        return self.monitor.history

    def after_fit(self) -> None:
        if self.data.skips.count:
            stream = self.data.stream is not None
            total = self.data.stream_samples if stream else len(self.data.train_indices)
            print(self.data.skips.summary(total=total))

    def evaluate(self, initial: Method) -> FinalEvaluation | None:
        if self.data.bank is None:
            return None
        train, test = held_out_split(self.config, self.data)
        scores = final_evaluation(self.config, self.data, self.method, initial, self.views, train, test)
        return FinalEvaluation(scores, format_table(scores))
