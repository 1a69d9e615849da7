"""CPC on 1-D signals: shapes, the loss against a hand computation, causality of the context, and that a short
training run makes the contexts separate classes of synthetic signals far better than at initialisation."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from contrastkit.backbones import create_backbone, list_backbones
from contrastkit.backbones.sequence_cnn import SequenceCNN
from contrastkit.data.synthetic_signals import synthetic_signals
from contrastkit.losses import CPCLoss
from contrastkit.methods import create_method, list_methods
from contrastkit.methods.cpc import CPC
from contrastkit.train.config import component_schema


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, most of all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make(**kwargs) -> CPC:
    """Encoder 8x downsampling, 16 channels; GRU 24; three steps ahead."""
    return CPC(SequenceCNN(1, strides=(4, 2), width=16), **{"context_dim": 24, "prediction_steps": 3, **kwargs})


def test_defaults_and_registration():
    defaults = {k: p.default for k, p in inspect.signature(CPC.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "context_dim": 256,
        "prediction_steps": 12,
        "gru_layers": 1,
        "temperature": 1.0,
        "normalize": False,
        "pooling": "mean",
    }
    assert CPC.num_views == 1 and not CPC.uses_labels
    assert "cpc" in list_methods() and "sequence_cnn" in list_backbones()
    backbone = create_backbone("sequence_cnn", in_chans=2, strides=(2, 2), width=8)
    method = create_method("cpc", backbone, context_dim=12, prediction_steps=2)
    assert isinstance(method, CPC) and method.feature_dim == 12
    component_schema("method", "name", "cpc", CPC, skip=("backbone",))  # typed config from the signature


def test_shapes():
    method = make()
    x = torch.randn(5, 1, 128)  # (B, C, L)
    z = method.encode(x)
    assert z.shape == (5, 16, 16)  # (B, L / 8, width)
    assert method.backbone(x).shape == (5, 16)  # the Backbone contract: time-averaged frames
    c = method.contexts(x)
    assert c.shape == (5, 16, 24)
    assert method.predict(c).shape == (5, 3, 16, 16)  # (B, K, T, D)
    assert method.feature_dim == 24 and method.embed(x).shape == (5, 24)
    out = method([x])
    assert out.loss.dim() == 0 and out.loss.requires_grad
    assert set(out.metrics) == {"loss", "accuracy", "accuracy_k1"}
    assert all(v.dim() == 0 and not v.requires_grad for v in out.metrics.values())
    out.loss.backward()
    for name, p in method.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_encoder_lengths_and_paper_configuration():
    encoder = SequenceCNN(1, strides=(5, 4, 2, 2, 2), width=8)  # the paper's 160x downsampling
    assert encoder.downsampling == 160
    assert encoder.forward_sequence(torch.randn(2, 1, 160 * 20)).shape[1] in (19, 20)
    assert SequenceCNN(3, strides=(2, 2, 2)).forward_sequence(torch.randn(2, 3, 64)).shape == (2, 8, 64)


def test_pooling():
    x = torch.randn(4, 1, 96)
    method = make()
    c = method.contexts(x)  # (B, T, H)
    torch.testing.assert_close(method.embed(x), c.mean(1))
    method = make(pooling="last")
    torch.testing.assert_close(method.embed(x), method.contexts(x)[:, -1])


@pytest.mark.parametrize(("temperature", "normalize"), [(1.0, False), (0.2, True)])
def test_loss_matches_hand_computation(temperature, normalize):
    method = make(temperature=temperature, normalize=normalize)
    x = torch.randn(4, 1, 96)  # T = 12 frames
    out = method([x])
    z = method.backbone.forward_sequence(x)  # (B, T, D)
    c, _ = method.gru(z)  # (B, T, H)
    predictions = torch.stack([c @ w.weight.T for w in method.predictors], dim=1)  # (B, K, T, D)
    torch.testing.assert_close(out.loss, CPCLoss(temperature, normalize)(predictions, z))

    # InfoNCE written out: W_k c_t picks z_{t+k} among all B * T frames of the batch.
    b, t_len, d = z.shape
    if normalize:
        predictions, z = F.normalize(predictions, dim=-1), F.normalize(z, dim=-1)
    candidates = z.reshape(b * t_len, d)  # (B*T, D)
    terms = []
    for k in range(1, method.prediction_steps + 1):
        for i in range(b):
            for t in range(t_len - k):
                logits = candidates @ predictions[i, k - 1, t] / temperature  # (B*T,)
                terms.append(torch.logsumexp(logits, 0) - logits[i * t_len + t + k])
    torch.testing.assert_close(out.loss, torch.stack(terms).mean(), rtol=1e-5, atol=1e-5)


def test_context_is_causal():
    method = make()
    z = torch.randn(3, 20, 16)  # (B, T, D)
    later = z.clone()
    later[:, 8:] = torch.randn(3, 12, 16)  # a different future from frame 8 on
    c, c_later = method.gru(z)[0], method.gru(later)[0]
    torch.testing.assert_close(c[:, :8], c_later[:, :8], rtol=0, atol=0)
    assert (c[:, 8:] - c_later[:, 8:]).abs().amax(dim=-1).min() > 0  # every later step sees the change

    # End to end: changing the signal from sample 64 on moves no frame, nor context, before the change reaches it.
    x = torch.randn(3, 1, 160)
    y = x.clone()
    y[..., 64:] = torch.randn(3, 1, 96)
    changed = (method.encode(x) - method.encode(y)).abs().amax(dim=(0, 2)) > 0  # (T,)
    first = int(changed.nonzero()[0])
    assert 64 // 8 - 2 <= first <= 64 // 8  # the encoder only looks a few samples ahead (kernel 2 * stride)
    cx, cy = method.contexts(x), method.contexts(y)
    torch.testing.assert_close(cx[:, :first], cy[:, :first], rtol=0, atol=0)
    assert not torch.equal(cx[:, first], cy[:, first])


def test_rejects_bad_inputs():
    method = make()
    with pytest.raises(ValueError, match="takes 1 views"):
        method([torch.randn(2, 1, 64), torch.randn(2, 1, 64)])
    with pytest.raises(ValueError, match=r"sequences \(B, C, L\)"):
        method([torch.randn(2, 1, 8, 8)])
    with pytest.raises(ValueError, match=r"T=2 frames.*needs T > 3"):
        method([torch.randn(2, 1, 16)])
    with pytest.raises(TypeError, match="forward_sequence"):
        CPC(create_backbone("small_cnn", in_chans=1))
    with pytest.raises(ValueError, match="pooling"):
        make(pooling="max")
    with pytest.raises(ValueError, match=">= 1"):
        make(prediction_steps=0)
    with pytest.raises(ValueError, match="strides"):
        SequenceCNN(1, strides=())


def knn_accuracy(train: torch.Tensor, train_y: torch.Tensor, test: torch.Tensor, test_y: torch.Tensor, k=5) -> float:
    """Cosine k-nearest-neighbour majority vote (ties to the lowest class)."""
    similarity = F.normalize(test, dim=1) @ F.normalize(train, dim=1).T  # (N_test, N_train)
    votes = train_y[similarity.topk(k, dim=1).indices]  # (N_test, k)
    return (votes.mode(dim=1).values == test_y).float().mean().item()


def test_training_makes_contexts_separate_frequency_classes():
    """Four period bands (6-48 samples, log-spaced), the waveform random, amplitude 0.5-1.5, noise std 1.0.

    The class is the signal's frequency, the slow feature that CPC has to capture to predict frames ahead;
    the noise is unpredictable and the waveform is a nuisance. A random encoder and GRU do separate frequencies
    somewhat (~0.5 kNN accuracy here), so the assertions are relative to that as well as to chance: the trained
    contexts must be halfway from chance to perfect, and beat the initial model by a fifth of that span.
    """
    num_classes = 4
    data = {"length": 128, "num_classes": num_classes, "noise": 1.0, "period_range": (6.0, 48.0)}
    x_train, y_train = synthetic_signals(1000, seed=1, random_waveform=True, **data)
    x_test, y_test = synthetic_signals(500, seed=2, random_waveform=True, **data)
    method = CPC(SequenceCNN(1, strides=(4, 2), width=32), context_dim=64, prediction_steps=4)

    def accuracy() -> float:
        method.eval()
        with torch.no_grad():
            acc = knn_accuracy(method.embed(x_train), y_train, method.embed(x_test), y_test)
        method.train()
        return acc

    initial = accuracy()
    optimizer = torch.optim.Adam(method.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        out = method([x_train[torch.randint(len(x_train), (32,), generator=generator)]])
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    trained = accuracy()

    chance = 1 / num_classes
    assert sum(losses[-20:]) < sum(losses[:20])
    assert trained >= chance + (1 - chance) / 2, (trained, initial)
    assert trained >= initial + (1 - chance) / 5, (trained, initial)
