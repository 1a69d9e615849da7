import inspect
import math

import pytest
import torch
from torch import nn

from contrastkit.methods import create_method
from contrastkit.methods.barlowtwins import BarlowTwins
from contrastkit.train.config import component_schema
from tests.methods.digit_views import fixed_batch_loss, tiny_backbone, train_on_digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, most of all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"projection_dim": 16, "hidden_dim": 24}


def make(**kwargs) -> BarlowTwins:
    return BarlowTwins(tiny_backbone(), **{**SMALL, **kwargs})


def views(b: int = 8) -> list[torch.Tensor]:
    return [torch.randn(b, 1, 16, 16), torch.randn(b, 1, 16, 16)]


def test_defaults_are_the_papers():
    defaults = {k: p.default for k, p in inspect.signature(BarlowTwins.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "projection_dim": 8192,
        "hidden_dim": 8192,
        "num_layers": 3,
        "lambda_": 5e-3,
        "gather_distributed": True,
    }
    component_schema("method", "name", "barlowtwins", BarlowTwins, skip=("backbone",))
    method = create_method("barlowtwins", tiny_backbone(), **SMALL)
    assert isinstance(method, BarlowTwins) and method.num_views == 2
    assert method.criterion.lambda_ == 5e-3 and method.criterion.gather_distributed is True
    layers = list(method.projection_head.layers)
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 24), (24, 24), (24, 16)]


@pytest.mark.parametrize("lambda_", [5e-3, 0.1])
def test_loss_is_the_cross_correlation_objective(lambda_):
    method = make(lambda_=lambda_)
    x1, x2 = views(b=12)
    out = method([x1, x2])
    with torch.no_grad():
        z1 = method.projection_head(method.backbone(x1)).double()  # (N, D)
        z2 = method.projection_head(method.backbone(x2)).double()  # (N, D)
    n, d = z1.shape

    def standardise(z):  # BatchNorm1d(affine=False) in training mode: biased variance, eps 1e-5
        return (z - z.mean(dim=0)) / torch.sqrt(z.var(dim=0, unbiased=False) + 1e-5)

    c = standardise(z1).T @ standardise(z2) / n  # (D, D)
    on = sum((1 - c[i, i]) ** 2 for i in range(d))
    off = sum(c[i, j] ** 2 for i in range(d) for j in range(d) if i != j)
    expected = on + lambda_ * off
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(out.metrics) == {"loss"} and out.metrics["loss"].item() == out.loss.item()


def test_gradients_reach_backbone_and_projector():
    method = make()
    method(views()).loss.backward()
    for name, p in method.named_parameters():
        if name == "projection_head.layers.6.bias":  # standardised away by the loss: zero gradient
            assert p.grad is not None and p.grad.abs().max() < 1e-5
            continue
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_views_are_refused():
    method = make()
    x = torch.randn(4, 1, 16, 16)
    for bad in ([x], [x, x, x]):
        with pytest.raises(ValueError, match="2 views"):
            method(bad)
    with pytest.raises(TypeError):
        method(x)


def test_embed_is_the_backbone():
    method = make().eval()
    x = torch.randn(5, 1, 16, 16)
    assert torch.equal(method.embed(x), method.backbone(x))


def test_training_on_digits_lowers_the_loss():
    method = make()
    before = fixed_batch_loss(method)
    losses = train_on_digits(method, lr=0.01)
    after = fixed_batch_loss(method)
    assert all(math.isfinite(v) for v in losses)
    assert after < 0.5 * before, (before, after, losses)
