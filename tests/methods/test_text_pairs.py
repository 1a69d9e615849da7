import pytest
import torch

from contrastkit.backbones.dual_encoder import create_text_encoder
from contrastkit.losses import MultipleNegativesRankingLoss
from contrastkit.methods import TextPairs

ANCHORS = ["how do I sort a list", "open a file", "define a class", "raise an exception", "import a module"]
PAIRS = [
    ("use list.sort() or sorted()", "a list is a sequence"),
    ("call open(path) to get a file object", "files are closed on exit"),
    ("the class statement defines a class", "instances have attributes"),
    ("the raise statement raises an exception", "exceptions can be caught"),
    ("the import statement loads a module", "modules have a namespace"),
]


def tiny_text_pairs(**params):
    torch.manual_seed(0)
    return TextPairs(create_text_encoder("transformer", width=32, layers=1, heads=4), **params)


def test_loss_is_the_ranking_loss_of_the_encoded_texts():
    method = tiny_text_pairs(temperature=0.1)
    out = method([ANCHORS], PAIRS)
    encode = method.backbone
    expected = MultipleNegativesRankingLoss(0.1)(
        encode(ANCHORS), encode([p for p, _ in PAIRS]), encode([n for _, n in PAIRS])
    )
    torch.testing.assert_close(out.loss, expected)
    without = method([ANCHORS], [(p,) for p, _ in PAIRS])  # no hard negatives: fewer candidates, lower loss
    assert without.loss < out.loss
    out.loss.backward()
    assert method.backbone.token_embedding.weight.grad.abs().sum() > 0


def test_grad_cache_gives_the_full_batch_gradients():
    from contrastkit.optim.grad_cache import GradCache

    plain, cached = tiny_text_pairs(), tiny_text_pairs()
    plain([ANCHORS], PAIRS).loss.backward()
    GradCache(cached, chunk_size=2)([ANCHORS], PAIRS)
    for (name, p), q in zip(plain.named_parameters(), cached.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=2e-5, msg=name)


def test_bad_batches_are_refused():
    method = tiny_text_pairs()
    with pytest.raises(ValueError, match="5 anchors and 4 pairs"):
        method([ANCHORS], PAIRS[:4])
    with pytest.raises(ValueError, match="not a mix"):
        method([ANCHORS], [PAIRS[0], *[(p,) for p, _ in PAIRS[1:]]])
    with pytest.raises(TypeError, match="anchors a list of strings"):
        method([torch.zeros(5, 3)], PAIRS)


@pytest.fixture
def guide_file(tmp_path):
    from contrastkit.backbones import save_encoder

    torch.manual_seed(5)
    guide = create_text_encoder("transformer", width=16, layers=1, heads=2)
    return str(
        save_encoder(guide.eval(), tmp_path / "guide.safetensors", {"kind": "text", "text_encoder": guide.text_config})
    )


def test_a_guide_masks_with_its_own_embeddings_and_stays_out_of_training(guide_file):
    import contrastkit

    method = tiny_text_pairs(temperature=0.1, guide=guide_file, guide_margin=0.0)
    out = method([ANCHORS], PAIRS)
    guide = contrastkit.load_encoder(guide_file)
    texts = [ANCHORS, [p for p, _ in PAIRS], [n for _, n in PAIRS]]
    with torch.no_grad():
        guided = [guide.encode_text(t) for t in texts]
    encode = method.backbone
    expected = MultipleNegativesRankingLoss(0.1)(*(encode(t) for t in texts), guide=guided)
    torch.testing.assert_close(out.loss, expected)
    assert not any(name.startswith("_guide") for name, _ in method.named_parameters())  # not trained, not saved
    assert all(not k.startswith("_guide") for k in method.state_dict())


def test_grad_cache_with_a_guide_gives_the_full_batch_gradients(guide_file):
    from contrastkit.optim.grad_cache import GradCache

    plain, cached = tiny_text_pairs(guide=guide_file), tiny_text_pairs(guide=guide_file)
    plain([ANCHORS], PAIRS).loss.backward()
    GradCache(cached, chunk_size=2)([ANCHORS], PAIRS)
    for (name, p), q in zip(plain.named_parameters(), cached.parameters(), strict=True):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-4, atol=2e-5, msg=name)


def test_an_image_only_guide_is_refused(tmp_path):
    from contrastkit.backbones import create_backbone, save_encoder

    path = save_encoder(create_backbone("small_cnn", in_chans=1), tmp_path / "img.safetensors",
                        {"backbone": "small_cnn", "in_chans": 1})  # fmt: skip
    with pytest.raises(ValueError, match="a guide must embed text"):
        tiny_text_pairs(guide=str(path))
