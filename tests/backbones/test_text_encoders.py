import copy

import pytest
import torch
import torch.nn.functional as F

from contrastkit.backbones.dual_encoder import DualEncoder, create_text_encoder
from contrastkit.backbones.minilm_text_encoder import minilm_path

TEXTS = ["a photo of a trouser.", "a black and white picture of an ankle boot.", "How do I sort a list in Python?"]


def test_minilm_matches_sentence_transformers(minilm):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(minilm_path()), device="cpu").encode(TEXTS, convert_to_tensor=True)
    with torch.no_grad():
        ours = F.normalize(minilm(TEXTS), dim=-1)
    assert ours.shape == (3, 384)
    torch.testing.assert_close(ours, reference.float(), rtol=1e-4, atol=1e-5)


def test_minilm_features_do_not_depend_on_the_rest_of_the_batch(minilm):
    with torch.no_grad():
        alone = minilm(TEXTS[:1])
        batched = minilm(TEXTS)[:1]  # padded to the longest text of the batch
    torch.testing.assert_close(alone, batched, rtol=1e-4, atol=1e-5)


def test_text_transformer_masks_padding_and_learns():
    torch.manual_seed(0)
    tower = create_text_encoder("transformer", width=32, layers=2, heads=4).eval()
    with torch.no_grad():
        torch.testing.assert_close(tower(TEXTS[:1]), tower(TEXTS)[:1], rtol=1e-4, atol=1e-5)
    out = tower(TEXTS)
    assert out.shape == (3, 32)
    out.sum().backward()
    assert tower.token_embedding.weight.grad.abs().sum() > 0
    assert tower.text_config["name"] == "transformer" and tower.text_config["width"] == 32


def test_locked_text_tower_is_frozen_cached_and_stays_in_eval_mode(minilm):
    minilm = copy.deepcopy(minilm)  # locking freezes the tower: never the session's shared one
    image = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8))
    image.feature_dim = 8
    dual = DualEncoder(image, minilm, embed_dim=4, lock_text=True).train()
    assert not minilm.training and not any(p.requires_grad for p in minilm.parameters())
    first = dual.encode_text(TEXTS)
    assert len(dual._text_cache) == 3
    again = dual.encode_text(list(reversed(TEXTS)))
    torch.testing.assert_close(first, again.flip(0))
    first.sum().backward()
    assert dual.text_projection.weight.grad is not None
    dual.load_state_dict(dual.state_dict())
    assert not dual._text_cache  # weights loaded: cached features are stale


def test_bad_text_inputs():
    tower = create_text_encoder("transformer", width=16, layers=1, heads=2)
    with pytest.raises(TypeError, match="list of strings"):
        tower("one string")
    with pytest.raises(ValueError, match="empty"):
        tower([])
    with pytest.raises(ValueError, match="text_encoder must be one of"):
        create_text_encoder("bert")
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        create_text_encoder("minilm", model_path="/nonexistent/folder")
