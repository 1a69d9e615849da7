import numpy as np
import pytest
import torch
import torch.nn.functional as F

from contrastkit.eval import image_text_retrieval, zero_shot, zero_shot_classifier


class BagOfWords(torch.nn.Module):
    """A toy dual encoder: texts embed as word counts over a vocabulary, 'images' are already vectors."""

    def __init__(self, vocabulary):
        super().__init__()
        self.vocabulary = vocabulary

    def encode_text(self, texts):
        rows = [[float(t.rstrip(".").split().count(w)) for w in self.vocabulary] for t in texts]
        return F.normalize(torch.tensor(rows) + 1e-3, dim=-1)

    def encode_image(self, x):
        return F.normalize(x.float(), dim=-1)


def test_class_embeddings_average_the_templates_and_predictions_match_numpy():
    vocab = ["cat", "dog", "car", "photo", "drawing"]
    model = BagOfWords(vocab)
    templates = ["a photo of a {}.", "a drawing of a {}."]
    weights = zero_shot_classifier(model, ["cat", "dog", "car"], templates)
    manual = F.normalize(
        torch.stack(
            [F.normalize(model.encode_text([t.format(c) for t in templates]), dim=-1).mean(0) for c in vocab[:3]]
        ),
        dim=-1,
    )
    torch.testing.assert_close(weights, manual)
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(3, (50,), generator=g)
    features = F.one_hot(labels, 5).float() + 0.8 * torch.rand(50, 5, generator=g)  # noisy "images"
    result = zero_shot(model, features, ["cat", "dog", "car"], templates, labels)
    scores = F.normalize(features, dim=-1).numpy() @ manual.numpy().T
    assert result.top1 == pytest.approx(float(np.mean(scores.argmax(1) == labels.numpy())))
    assert result.top5 == 1.0 and result.chance == pytest.approx(1 / 3) and result.num_classes == 3


def test_zero_shot_refuses_bad_input():
    model = BagOfWords(["cat", "dog"])
    with pytest.raises(TypeError, match="not an image-text model"):
        zero_shot(torch.nn.Linear(2, 2), torch.randn(3, 2), ["cat", "dog"], labels=[0, 1, 0])
    with pytest.raises(ValueError, match="labels is required"):
        zero_shot(model, torch.randn(3, 2), ["cat", "dog"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        zero_shot(model, torch.randn(3, 2), ["cat", "dog"], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="exactly one"):
        zero_shot(model, torch.randn(3, 2), ["cat", "dog"], ["no slot"], labels=[0, 1, 0])
    with pytest.raises(ValueError, match="at least 2"):
        zero_shot_classifier(model, ["cat"])


def test_image_text_retrieval_scores_paired_rows():
    g = torch.Generator().manual_seed(0)
    images = torch.randn(20, 8, generator=g)
    texts = images + 0.01 * torch.randn(20, 8, generator=g)
    scores = image_text_retrieval(images, texts)
    assert scores["image_to_text"]["recall@1"] == 1.0 and scores["text_to_image"]["mrr"] == 1.0
    shuffled = image_text_retrieval(images, texts.roll(1, dims=0))
    assert shuffled["image_to_text"]["recall@1"] < 0.2
    with pytest.raises(ValueError, match="pairs must align"):
        image_text_retrieval(images, texts[:5])
