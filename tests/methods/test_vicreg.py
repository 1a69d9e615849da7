import inspect
import math

import pytest
import torch
from torch import nn

from contrastkit.methods import create_method
from contrastkit.methods.vicreg import VICReg
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


def make(**kwargs) -> VICReg:
    return VICReg(tiny_backbone(), **{**SMALL, **kwargs})


def views(b: int = 8) -> list[torch.Tensor]:
    return [torch.randn(b, 1, 16, 16), torch.randn(b, 1, 16, 16)]


def test_defaults_are_the_papers():
    defaults = {k: p.default for k, p in inspect.signature(VICReg.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "projection_dim": 8192,
        "hidden_dim": 8192,
        "num_layers": 3,
        "lambda_": 25.0,
        "mu": 25.0,
        "nu": 1.0,
        "gather_distributed": True,
    }
    component_schema("method", "name", "vicreg", VICReg, skip=("backbone",))
    method = create_method("vicreg", tiny_backbone(), **SMALL)
    assert isinstance(method, VICReg) and method.num_views == 2
    c = method.criterion
    assert (c.lambda_, c.mu, c.nu, c.gather_distributed) == (25.0, 25.0, 1.0, True)
    layers = list(method.projection_head.layers)
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear"]
    linears = [m for m in layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 24), (24, 24), (24, 16)]


@pytest.mark.parametrize("weights", [(25.0, 25.0, 1.0), (1.0, 2.0, 3.0)])
def test_loss_is_invariance_variance_covariance(weights):
    lambda_, mu, nu = weights
    method = make(lambda_=lambda_, mu=mu, nu=nu)
    x1, x2 = views(b=12)
    out = method([x1, x2])
    with torch.no_grad():
        z1 = method.projection_head(method.backbone(x1)).double()  # (N, D)
        z2 = method.projection_head(method.backbone(x2)).double()  # (N, D)
    n, d = z1.shape

    def variance(z):  # hinge on the std, unbiased variance, eps 1e-4
        std = torch.sqrt(((z - z.mean(dim=0)) ** 2).sum(dim=0) / (n - 1) + 1e-4)  # (D,)
        return torch.clamp(1 - std, min=0).mean()

    def covariance(z):  # squared off-diagonal covariances over D
        zc = z - z.mean(dim=0)
        cov = zc.T @ zc / (n - 1)  # (D, D)
        return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d

    invariance = ((z1 - z2) ** 2).mean()
    expected = lambda_ * invariance + mu * (variance(z1) + variance(z2)) / 2 + nu * (covariance(z1) + covariance(z2))
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert set(out.metrics) == {"loss"} and out.metrics["loss"].item() == out.loss.item()


def test_gradients_reach_backbone_and_projector():
    method = make()
    method(views()).loss.backward()
    for name, p in method.named_parameters():
        if name == "projection_head.layers.6.bias":  # shifts both views alike: no term of the loss sees it
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
    before = fixed_batch_loss(method)  # about 22, mostly the variance hinge
    losses = train_on_digits(method, lr=0.02)
    after = fixed_batch_loss(method)
    assert all(math.isfinite(v) for v in losses)
    assert after < before - 1.0, (before, after, losses)
