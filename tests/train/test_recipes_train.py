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

ADAPT = "simclr-adapt-fashion-mnist"  # continues from a pretrained network given on the command line
RECIPES = [name for name in list_recipes() if name.endswith("-fashion-mnist") and name != ADAPT]


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


def test_the_adaptation_recipe_continues_a_pretrained_network_with_its_statistics_kept(tmp_path):
    """simclr-adapt-fashion-mnist from an imported timm EfficientNet-Lite0 (random weights here, its batch-norm
    statistics set away from 0 / 1): the views normalise as the encoder file says, the backbone learns at a tenth of
    the heads' rate, and its running statistics are exactly the pretrained ones afterwards while its weights moved."""
    from contrastkit.backbones.import_encoder import import_encoder
    from contrastkit.train.config import ConfigError
    from contrastkit.train.tasks.image_task import build_views

    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    source = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    torch.save(source.state_dict(), tmp_path / "lite0.pth")
    start = import_encoder("timm:tf_efficientnet_lite0", tmp_path / "lite0.safetensors", str(tmp_path / "lite0.pth"))
    with pytest.raises(ConfigError, match=r"backbone\.freeze_batchnorm .* set backbone\.pretrained=FILE"):
        load_config(ADAPT)  # the recipe needs the network to start from
    overrides = ["data.name=digits", "data.batch_size=16", "data.num_workers=0", "trainer.max_steps=2"]
    overrides += ["views.input_size=32", "trainer.enable_progress_bar=false", "monitor.every_n_epochs=0"]
    overrides += ["final_eval.enabled=false", f"out_dir={tmp_path}", f"backbone.pretrained={start}"]
    config = load_config(ADAPT, overrides)
    views = build_views(config, channels=1, image_size=8)
    assert list(views.specs[0].mean) == [0.5] * 3 and list(views.specs[0].std) == [0.5] * 3  # TF's, from the file
    result = train(config)
    before, after = contrastkit.load_encoder(start).model.state_dict(), contrastkit.load_encoder(result.encoder)
    after = after.model.state_dict()
    statistics = [k for k in before if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert statistics and [k for k in statistics if not torch.equal(before[k], after[k])] == []
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("conv_stem.weight"))
