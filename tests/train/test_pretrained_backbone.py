"""backbone.pretrained: a run starts from an encoder file's backbone, and its export says what it started from."""

from __future__ import annotations

import pytest
import torch

import contrastkit
from contrastkit.backbones import create_backbone, save_encoder
from contrastkit.train.config import ConfigError
from contrastkit.train.fit import train
from contrastkit.train.tasks import build_method
from tests.train.helpers import tiny_config


@pytest.fixture
def start(tmp_path):
    torch.manual_seed(123)
    backbone = create_backbone("small_cnn_wide", in_chans=1)  # another architecture than the config's small_cnn
    info = {"backbone": "small_cnn_wide", "in_chans": 1, "input_size": 8, "mean": [0.5], "std": [0.5]}
    return save_encoder(backbone.eval(), tmp_path / "start.safetensors", info), backbone.state_dict()


def test_the_method_starts_from_the_files_weights_and_architecture(tmp_path, start):
    path, weights = start
    method = build_method(tiny_config(tmp_path, f"backbone.pretrained={path}"), in_chans=1)
    state = method.backbone.state_dict()
    assert state.keys() == weights.keys() and all(torch.equal(state[k], v) for k, v in weights.items())
    assert method.backbone.training  # ready to train (batch norm in training mode)


def test_a_run_from_a_pretrained_backbone_exports_its_architecture(tmp_path, start):
    path, weights = start
    evaluation = ["final_eval.enabled=true", "final_eval.train_size=300", "final_eval.test_size=200"]
    result = train(tiny_config(tmp_path, f"backbone.pretrained={path}", "trainer.max_epochs=1", *evaluation))
    rows = {r["encoder"]: r for r in result.final_eval["rows"]}
    assert set(rows) == {"simclr (trained)", "pretrained start", "raw pixels"}  # measured against where it began
    encoder = contrastkit.load_encoder(result.encoder)  # rebuilt from the metadata alone
    assert encoder.encoder_info["backbone"] == "small_cnn_wide" and encoder.encoder_info["pretrained"] == str(path)
    trained = encoder.model.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in weights.items() if k.endswith("weight"))


def test_a_bad_pretrained_file_is_refused_before_training(tmp_path, start):
    with pytest.raises(ConfigError, match=r"backbone\.pretrained: .*does not exist"):
        tiny_config(tmp_path, f"backbone.pretrained={tmp_path / 'missing.safetensors'}")
    path, _ = start
    config = tiny_config(tmp_path, f"backbone.pretrained={path}")
    with pytest.raises(ConfigError, match=r"takes 1-channel images and the views have 3; set views\.channels=1"):
        build_method(config, in_chans=3)


def test_backbone_lr_ratio_slows_the_backbone_only(tmp_path, start):
    from contrastkit.train.build_optimizer import build_optimizer
    from contrastkit.train.config import OptimConfig

    path, _ = start
    method = build_method(tiny_config(tmp_path, f"backbone.pretrained={path}"), in_chans=1)
    config = OptimConfig(name="adamw", lr=0.02, backbone_lr_ratio=0.1)
    optimizer = build_optimizer(method, config, global_batch=128)  # lr 0.02 * 128 / 256 = 0.01
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    trainable = [p for p in method.parameters() if p.requires_grad]
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(trainable) == len(lr_of)  # each once
    backbone = {id(p) for p in method.backbone.parameters()}
    for p in trainable:
        assert lr_of[id(p)] == pytest.approx(0.001 if id(p) in backbone else 0.01)
    decay_of = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    assert {decay_of[id(p)] for p in method.backbone.parameters() if p.ndim <= 1} == {0.0}  # norms and biases
    with pytest.raises(ConfigError, match=r"optim\.backbone_lr_ratio must be > 0"):
        tiny_config(tmp_path, "optim.backbone_lr_ratio=0")


def test_a_run_with_a_slow_backbone_keeps_the_ratio_through_its_schedule(tmp_path, start):
    path, _ = start
    result = train(
        tiny_config(tmp_path, f"backbone.pretrained={path}", "trainer.max_epochs=1", "optim.backbone_lr_ratio=0.25")
    )
    checkpoint = torch.load(result.run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    base_lrs = checkpoint["lr_schedulers"][0]["base_lrs"]
    assert len(base_lrs) == 4 and base_lrs[2] == pytest.approx(base_lrs[0] * 0.25)  # heads' groups, then backbone's
    assert base_lrs[3] == pytest.approx(base_lrs[1] * 0.25)
