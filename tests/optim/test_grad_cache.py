"""Gradient caching (GradCache, arXiv 2101.06983): the chunked forward/backward gives the full-batch gradients, the
trainer's manual step does what Lightning's automatic one does, and bad inputs are refused."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor, nn

import contrastkit.optim.grad_cache as grad_cache_module
from contrastkit.backbones import list_backbones, register_backbone
from contrastkit.methods import Method, MethodOutput, create_method
from contrastkit.methods.simclr import SimCLR
from contrastkit.methods.supcon import SupCon
from contrastkit.optim.grad_cache import GradCache, grad_cache_step, slice_batch
from contrastkit.train.config import ConfigError
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config

BATCH = 12
CHUNKS = (1, 5, 12, 64)  # 5 does not divide the batch; 64 is larger than it


def groupnorm_cnn(in_chans: int = 1, small_input: bool = False, dropout: float = 0.0) -> nn.Module:
    """A tiny CNN without batch statistics (GroupNorm), so chunking cannot change the result."""
    del small_input
    model = nn.Sequential(
        nn.Conv2d(in_chans, 8, 3, padding=1),
        nn.GroupNorm(2, 8),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.GroupNorm(4, 16),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    model.feature_dim = 16
    return model


def gc_groupnorm_cnn(in_chans: int = 1, small_input: bool = False) -> nn.Module:
    return groupnorm_cnn(in_chans, small_input)


if "gc_groupnorm_cnn" not in list_backbones():
    register_backbone(gc_groupnorm_cnn)


def views_and_labels(seed: int = 0) -> tuple[list[Tensor], Tensor]:
    g = torch.Generator().manual_seed(seed)
    views = [torch.randn(BATCH, 1, 8, 8, generator=g) for _ in range(2)]
    return views, torch.randint(0, 3, (BATCH,), generator=g)


def grads(module: nn.Module) -> dict[str, Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def assert_same_grads(actual: dict[str, Tensor], expected: dict[str, Tensor]) -> None:
    assert actual.keys() == expected.keys() and expected
    for name, g in expected.items():
        torch.testing.assert_close(actual[name], g, rtol=1e-4, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}")


def make(kind: str, dropout: float = 0.0) -> Method:
    torch.manual_seed(0)
    cls = SimCLR if kind == "simclr" else SupCon
    return cls(groupnorm_cnn(dropout=dropout), hidden_dim=32, projection_dim=8, temperature=0.5, batch_norm=False)


@pytest.mark.parametrize("kind", ["simclr", "supcon"])
def test_gradients_equal_the_full_batch_gradients(kind):
    method = make(kind)
    views, labels = views_and_labels()
    labels = labels if kind == "supcon" else None
    plain = method(views, labels)
    plain.loss.backward()
    expected = grads(method)
    for chunk in CHUNKS:
        method.zero_grad(set_to_none=True)
        out = GradCache(method, chunk)(views, labels)
        assert not out.loss.requires_grad and set(out.metrics) == set(plain.metrics)
        torch.testing.assert_close(out.loss, plain.loss.detach())
        assert_same_grads(grads(method), expected)


def test_dropout_is_replayed_chunk_by_chunk():
    """With dropout the chunked masks differ from one full-batch draw, so GradCache gives exactly the gradient of the
    loss of the embeddings its first (no-grad) pass computed: the reference embeds the same chunks with graph from
    the same RNG seed. Without the RNG replay the second pass would draw other masks and another gradient."""
    method = make("simclr", dropout=0.5)
    views, _ = views_and_labels()
    chunk = 5
    torch.manual_seed(123)
    parts = [method.embed_batch([v[i : i + chunk] for v in views]) for i in range(0, BATCH, chunk)]
    reference = method.loss_from_embeddings([torch.cat(p) for p in zip(*parts, strict=True)])
    reference.loss.backward()
    expected, rng_after = grads(method), torch.get_rng_state()

    method.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    out = GradCache(method, chunk)(views)
    torch.testing.assert_close(out.loss, reference.loss.detach())
    assert_same_grads(grads(method), expected)
    assert torch.equal(torch.get_rng_state(), rng_after)  # the stream goes on as after one pass

    method.zero_grad(set_to_none=True)
    torch.manual_seed(123)
    no_replay = grad_cache_module._set_rng
    try:
        grad_cache_module._set_rng = lambda state, devices: None
        GradCache(method, chunk)(views)
    finally:
        grad_cache_module._set_rng = no_replay
    assert not torch.allclose(grads(method)["backbone.0.weight"], expected["backbone.0.weight"], rtol=1e-3)


class CaptionCLIP(Method):
    """A CLIP-like method owning a learnable logit scale; labels are caption strings (sliced per chunk)."""

    supports_grad_cache = True

    def __init__(self) -> None:
        super().__init__(groupnorm_cnn())
        self.image_proj = nn.Linear(16, 8)
        self.text_proj = nn.Embedding(64, 8)
        self.logit_scale = nn.Parameter(torch.tensor(2.0))

    def embed_batch(self, views: Sequence[Tensor], labels: Any = None) -> list[Tensor]:
        assert isinstance(labels, list) and len(labels) == views[0].shape[0]
        tokens = torch.tensor([len(caption) % 64 for caption in labels])
        return [self.image_proj(self.backbone(views[0])), self.text_proj(tokens)]

    def loss_from_embeddings(self, embeddings: list[Tensor], labels: Any = None) -> MethodOutput:
        image, text = (nn.functional.normalize(e, dim=1) for e in embeddings)
        logits = self.logit_scale.exp() * image @ text.T
        target = torch.arange(len(logits))
        loss = (nn.functional.cross_entropy(logits, target) + nn.functional.cross_entropy(logits.T, target)) / 2
        return MethodOutput(loss, {"loss": loss.detach(), "scale": self.logit_scale.detach().exp()})

    def forward(self, views: Sequence[Tensor], labels: Any = None) -> MethodOutput:
        return self.loss_from_embeddings(self.embed_batch(views, labels), labels)


def test_loss_parameters_and_caption_labels():
    torch.manual_seed(0)
    method = CaptionCLIP()
    views = [torch.randn(BATCH, 1, 8, 8)]
    captions = [f"a photo of {'x' * i}" for i in range(BATCH)]
    method(views, captions).loss.backward()
    expected = grads(method)
    assert expected["logit_scale"].abs() > 0
    for chunk in (1, 5):
        method.zero_grad(set_to_none=True)
        GradCache(method, chunk)(views, captions)
        assert_same_grads(grads(method), expected)
    # the callable form, and a backward callable that scales the loss (as AMP does): every gradient scales with it
    method.zero_grad(set_to_none=True)
    grad_cache_step(
        method.embed_batch, method.loss_from_embeddings, views, captions, 5, lambda loss: (loss * 4).backward()
    )
    assert_same_grads({k: v / 4 for k, v in grads(method).items()}, expected)


def test_slice_batch():
    t = torch.arange(6)
    assert slice_batch(None, 0, 2) is None
    assert torch.equal(slice_batch(t, 2, 4), torch.tensor([2, 3]))
    assert slice_batch(["a", "b", "c"], 1, 3) == ["b", "c"]
    ids, mask = slice_batch((t, t * 2), 0, 2)
    assert torch.equal(ids, t[:2]) and torch.equal(mask, t[:2] * 2)
    assert torch.equal(slice_batch({"ids": t}, 4, 6)["ids"], t[4:])


def test_bad_inputs_are_refused():
    method = make("simclr")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
            GradCache(method, bad)
    byol = create_method("byol", groupnorm_cnn(), hidden_dim=16, projection_dim=8)
    with pytest.raises(ValueError, match=r"BYOL does not support gradient caching.*simclr.*supcon"):
        GradCache(byol, 4)
    with pytest.raises(NotImplementedError, match="BYOL"):
        byol.embed_batch(views_and_labels()[0])
    with pytest.raises(NotImplementedError, match="BYOL"):
        byol.loss_from_embeddings([torch.zeros(2, 2)])
    with pytest.raises(ValueError, match="rows align"):
        grad_cache_step(lambda v, lab: [v[0].sum(0)], method.loss_from_embeddings, views_and_labels()[0], None, 4)


def test_config_refusals(tmp_path):
    with pytest.raises(ConfigError, match=r"trainer\.grad_cache_chunk_size must be >= 0"):
        tiny_config(tmp_path, "trainer.grad_cache_chunk_size=-1")
    config = tiny_config(tmp_path, "trainer.grad_cache_chunk_size=16", method="moco")
    with pytest.raises(ConfigError, match=r"method 'moco' does not support gradient caching.*simclr.*supcon"):
        train(config)
    assert not (config.run_dir / "checkpoints").exists()  # refused before training


class FinalState(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.initial = {k: v.detach().clone() for k, v in pl_module.method.state_dict().items()}

    def on_train_end(self, trainer, pl_module) -> None:
        self.weights = {k: v.detach().clone() for k, v in pl_module.method.state_dict().items()}
        self.steps = trainer.global_step
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def _run(tmp_path, name: str, *overrides: str) -> FinalState:
    config = tiny_config(
        tmp_path,
        f"name={name}",
        "backbone.name=gc_groupnorm_cnn",
        "method.batch_norm=false",
        "trainer.limit_train_batches=5",
        *overrides,
    )
    state = FinalState()
    train(config, callbacks=[state])
    return state


@pytest.mark.parametrize(
    "extra", [(), ("trainer.accumulate_grad_batches=2", "trainer.gradient_clip_val=0.05")], ids=["plain", "accum-clip"]
)
def test_trainer_run_equals_the_plain_run(tmp_path, extra):
    plain = _run(tmp_path, "plain", *extra)
    cached = _run(tmp_path, "cached", "trainer.grad_cache_chunk_size=16", *extra)
    assert cached.steps == plain.steps == (6 if extra else 10)  # 2 epochs of 5 batches; k=2 steps 3 times an epoch
    assert cached.lr == pytest.approx(plain.lr)
    assert cached.weights.keys() == plain.weights.keys()
    for name, value in plain.weights.items():
        torch.testing.assert_close(cached.weights[name], value, rtol=1e-4, atol=1e-5, msg=lambda m, n=name: f"{n}: {m}")
        assert not torch.allclose(plain.initial[name], value, atol=1e-4)  # moved: equal weights mean equal updates
