"""Every built-in Fashion-MNIST recipe trains through the Lightning trainer (on digits, for a few steps) and
exports an encoder that loads back."""

from __future__ import annotations

import math
import re

import pytest
import torch

import contrastkit
from contrastkit.train.config import list_recipes, load_config, recipe_path
from contrastkit.train.fit import train

RECIPES = [name for name in list_recipes() if name.endswith("-fashion-mnist")]


def test_every_method_has_a_recipe_per_data_set():
    methods = {load_config(name).method["name"] for name in RECIPES}
    image_only = {"simclr", "moco", "byol", "simsiam", "barlowtwins", "vicreg", "dino", "supcon"}
    assert methods == image_only | {"clip"}  # CLIP: clip-fashion-mnist, clip-pairs (your own captions)
    for suffix in ("cifar10", "imagenet"):
        assert len([n for n in list_recipes() if n.endswith(f"-{suffix}")]) == len(image_only)
    assert {"clip-pairs", "text-pairs"} <= set(list_recipes())


@pytest.mark.parametrize("recipe", RECIPES)
def test_fashion_mnist_recipes_state_the_budget_they_are_tuned_for(recipe):
    """The description says how many epochs the recipe is tuned for, and the recipe trains for exactly that."""
    from omegaconf import OmegaConf

    description = OmegaConf.load(recipe_path(recipe)).description
    stated = re.search(r"tuned for (\d+) epochs? .*\(~\d+ min", description)
    assert stated, f"{recipe}: the description must say 'tuned for N epochs ... (~M min ...)': {description!r}"
    assert load_config(recipe).trainer.max_epochs == int(stated.group(1))


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_trains_a_few_steps_and_exports(tmp_path, recipe):
    config = load_config(
        recipe,
        [
            "data.name=digits",
            "data.batch_size=32",
            "trainer.max_steps=3",
            "trainer.max_epochs=1",
            "trainer.accelerator=cpu",
            "trainer.enable_progress_bar=false",
            "trainer.log_every_n_steps=1",
            "monitor.bank_size=200",
            "monitor.query_size=100",
            "final_eval.enabled=false",
            f"out_dir={tmp_path}",
        ],
    )
    result = train(config)
    assert len(result.monitor) == 1 and 0.0 <= result.monitor[0]["knn/top1"] <= 1.0
    assert math.isfinite(result.monitor[0]["health/rankme"])
    encoder = contrastkit.load_encoder(result.encoder)
    features = encoder(torch.randn(2, 1, 8, 8))
    assert features.shape == (2, encoder.feature_dim) and bool(torch.isfinite(features).all())
