import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.backbones import create_backbone
from contrastkit.methods import CLIP, create_method

CAPTIONS = [f"a photo of the digit {i}." for i in range(6)]


def small_clip(**params):
    torch.manual_seed(0)
    return create_method("clip", create_backbone("small_cnn", in_chans=1), embed_dim=16, **params)


def test_loss_is_the_symmetric_cross_entropy_of_the_projected_embeddings():
    method = small_clip(text_encoder="transformer", text_width=32, text_layers=1, lock_text=False)
    images = torch.randn(6, 1, 28, 28)
    out = method([images], CAPTIONS)
    img, txt = method.embed_batch([images], CAPTIONS)
    # written out in float64: CLIP (Radford et al. 2021), logits = scale * cos, cross-entropy both ways
    logits = math.exp(method.criterion.log_logit_scale.item()) * (
        F.normalize(img.double(), dim=1) @ F.normalize(txt.double(), dim=1).T
    )
    target = torch.arange(6)
    expected = (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-5, atol=1e-5)
    assert out.metrics["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    out.loss.backward()
    for name in ("image_projection", "text_projection"):
        assert getattr(method.model, name).weight.grad.abs().sum() > 0, name
    assert method.criterion.log_logit_scale.grad is not None  # the temperature is learnt
    assert method.model.text_encoder.token_embedding.weight.grad is not None  # from scratch: the tower learns


def test_siglip_loss_and_locked_minilm_tower(minilm):
    method = small_clip(loss="siglip")
    assert method.model.lock_text
    out = method([torch.randn(6, 1, 28, 28)], CAPTIONS)
    out.loss.backward()
    assert all(p.grad is None for p in method.model.text_encoder.parameters())
    assert method.criterion.logit_bias.grad is not None


def test_inputs_are_checked():
    method = small_clip(text_encoder="transformer", text_width=16, text_layers=1, lock_text=False)
    with pytest.raises(TypeError, match="captions"):
        method([torch.randn(4, 1, 28, 28)], None)
    with pytest.raises(ValueError, match="one caption per image"):
        method([torch.randn(4, 1, 28, 28)], CAPTIONS)
    with pytest.raises(ValueError, match="loss must be one of"):
        small_clip(loss="triplet")
    assert CLIP.task == "image-text" and CLIP.num_views == 1


def test_grad_cache_gives_the_full_batch_gradients_for_clip():
    from contrastkit.optim.grad_cache import GradCache

    def build():
        torch.manual_seed(0)
        image = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.GELU())
        image.feature_dim = 32
        return create_method(
            "clip", image, text_encoder="transformer", text_width=32, text_layers=1, lock_text=False, embed_dim=16
        )

    images, captions = torch.randn(10, 1, 8, 8), [f"a handwritten digit {i % 4}" for i in range(10)]
    plain, cached = build(), build()
    plain([images], captions).loss.backward()
    GradCache(cached, chunk_size=3)([images], captions)
    for (name, p), q in zip(plain.named_parameters(), cached.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=2e-5, msg=name)


def test_fine_tuned_minilm_tower_learns_and_is_not_cached():
    method = small_clip(lock_text=False)
    assert method.model.text_encoder.training  # dropout on: the tower is trained, not frozen
    out = method([torch.randn(6, 1, 28, 28)], CAPTIONS)
    out.loss.backward()
    grads = [p.grad for p in method.model.text_encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    assert not method.model._text_cache


def test_without_a_text_projection_images_map_into_the_locked_text_space(minilm, tmp_path):
    from contrastkit.backbones import load_encoder, save_encoder

    torch.manual_seed(0)
    method = create_method("clip", create_backbone("small_cnn", in_chans=1), project_text=False, embed_dim=384)
    assert isinstance(method.model.text_projection, torch.nn.Identity)
    text = method.model.encode_text(CAPTIONS)
    tower = F.normalize(method.model.text_encoder(CAPTIONS), dim=1)  # the tower's own embeddings
    torch.testing.assert_close(text, tower, rtol=1e-5, atol=1e-6)
    out = method([torch.randn(6, 1, 28, 28)], CAPTIONS)
    out.loss.backward()
    assert method.model.image_projection.weight.grad.abs().sum() > 0
    module, info = method.export_module()
    path = save_encoder(module, tmp_path / "encoder.safetensors", {"backbone": "small_cnn", "in_chans": 1, **info})
    loaded = load_encoder(path)
    assert isinstance(loaded.model.text_projection, torch.nn.Identity)
    torch.testing.assert_close(loaded.encode_text(CAPTIONS), text, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="embed_dim must be 384"):
        create_method("clip", create_backbone("small_cnn", in_chans=1), project_text=False, embed_dim=128)
