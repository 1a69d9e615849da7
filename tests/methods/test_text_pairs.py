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
    from contrastkit.train.grad_cache import GradCache

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
