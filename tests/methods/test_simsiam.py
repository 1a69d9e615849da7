import inspect
import math

import pytest
import torch
from torch import nn

from contrastkit.methods import create_method
from contrastkit.methods.simsiam import SimSiam
from contrastkit.train.config import component_schema
from tests.methods.digit_views import fixed_batch_loss, tiny_backbone, train_on_digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, most of all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"projection_dim": 16, "hidden_dim": 24, "prediction_hidden_dim": 8}


def make(**kwargs) -> SimSiam:
    return SimSiam(tiny_backbone(), **{**SMALL, **kwargs})


def views(b: int = 8) -> list[torch.Tensor]:
    return [torch.randn(b, 1, 16, 16), torch.randn(b, 1, 16, 16)]


def neg_cos(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return -((p * z).sum(dim=1) / (p.norm(dim=1) * z.norm(dim=1))).mean()


def test_defaults_and_heads_are_the_papers():
    defaults = {k: p.default for k, p in inspect.signature(SimSiam.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "projection_dim": 2048,
        "hidden_dim": 2048,
        "prediction_hidden_dim": 512,
        "num_layers": 3,
    }
    component_schema("method", "name", "simsiam", SimSiam, skip=("backbone",))
    method = create_method("simsiam", tiny_backbone())
    assert isinstance(method, SimSiam) and method.num_views == 2
    layers = list(method.projection_head.layers)
    # BN on every fc including the output one, no ReLU on the output, output BN without affine (reference code)
    assert [type(m).__name__ for m in layers] == ["Linear", "BatchNorm1d", "ReLU"] * 2 + ["Linear", "BatchNorm1d"]
    assert [(m.in_features, m.out_features) for m in layers if isinstance(m, nn.Linear)] == [
        (32, 2048),
        (2048, 2048),
        (2048, 2048),
    ]
    assert all(m.bias is None for m in layers if isinstance(m, nn.Linear))
    assert layers[-1].affine is False and layers[1].affine is True
    pred = list(method.prediction_head.layers)
    assert [type(m).__name__ for m in pred] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert (pred[0].in_features, pred[0].out_features, pred[3].out_features) == (2048, 512, 2048)
    assert pred[3].bias is not None


def test_loss_is_the_symmetric_negative_cosine():
    method = make()
    x1, x2 = views()
    out = method([x1, x2])
    with torch.no_grad():
        z1 = method.projection_head(method.backbone(x1)).double()  # (B, D)
        z2 = method.projection_head(method.backbone(x2)).double()  # (B, D)
        p1 = method.prediction_head(z1.float()).double()  # (B, D)
        p2 = method.prediction_head(z2.float()).double()  # (B, D)
    expected = 0.5 * neg_cos(p1, z2) + 0.5 * neg_cos(p2, z1)
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-6)
    assert abs((0.5 * neg_cos(p1, z1) + 0.5 * neg_cos(p2, z2)).item() - expected.item()) > 1e-3
    zn = z1 / z1.norm(dim=1, keepdim=True)
    assert out.metrics["output_std"].item() == pytest.approx(zn.std(dim=0).mean().item(), abs=1e-6)
    assert out.metrics["loss"].item() == out.loss.item()


def test_stop_gradient_on_the_projections():
    method = make()
    x1, x2 = views()
    params = [p for p in method.parameters() if p.requires_grad]
    grads = torch.autograd.grad(method([x1, x2]).loss, params)

    def manual(stop_gradient: bool) -> tuple[torch.Tensor, ...]:
        z1 = method.projection_head(method.backbone(x1))  # (B, D)
        z2 = method.projection_head(method.backbone(x2))  # (B, D)
        p1, p2 = method.prediction_head(z1), method.prediction_head(z2)  # (B, D)
        t1, t2 = (z1.detach(), z2.detach()) if stop_gradient else (z1, z2)
        return torch.autograd.grad(0.5 * neg_cos(p1, t2) + 0.5 * neg_cos(p2, t1), params)

    with_stop, without_stop = manual(True), manual(False)
    for g, g_stop in zip(grads, with_stop, strict=True):
        torch.testing.assert_close(g, g_stop, rtol=1e-4, atol=1e-6)
    differences = [(g - g_free).abs().max().item() for g, g_free in zip(grads, without_stop, strict=True)]
    assert max(differences) > 1e-4  # the gradient through the targets is not negligible: the test is sensitive

    # the gradient reaching z comes only through the predictor, none through the targets
    z_seen = []
    handle = method.projection_head.register_forward_hook(lambda mod, inp, out: z_seen.append(out))
    out = method([x1, x2])
    handle.remove()
    dz1, dz2 = torch.autograd.grad(out.loss, z_seen)
    z1, z2 = z_seen
    p1, p2 = method.prediction_head(z1), method.prediction_head(z2)
    ref = torch.autograd.grad(0.5 * neg_cos(p1, z2.detach()) + 0.5 * neg_cos(p2, z1.detach()), [z1, z2])
    torch.testing.assert_close(dz1, ref[0], rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(dz2, ref[1], rtol=1e-4, atol=1e-7)


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
    assert method.embed(x).shape == (5, 32)
    assert torch.equal(method.embed(x), method.backbone(x))


def test_training_on_digits_lowers_the_loss():
    method = make()
    before = fixed_batch_loss(method)
    losses = train_on_digits(method)
    after = fixed_batch_loss(method)
    assert all(math.isfinite(v) for v in losses)
    assert after < before - 0.1, (before, after, losses)
