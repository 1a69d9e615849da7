import inspect
import io
import math

import pytest
import torch
from torch import nn

from contrastkit.methods import Progress, create_method
from contrastkit.methods.byol import BYOL
from contrastkit.train.config import component_schema
from tests.methods.digit_views import fixed_batch_loss, tiny_backbone, train_on_digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, most of all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"projection_dim": 16, "hidden_dim": 32, "prediction_hidden_dim": 24}


def make(**kwargs) -> BYOL:
    return BYOL(tiny_backbone(), **{**SMALL, **kwargs})


def views(b: int = 8) -> list[torch.Tensor]:
    return [torch.randn(b, 1, 16, 16), torch.randn(b, 1, 16, 16)]


def online_params(method: BYOL) -> list[nn.Parameter]:
    return [*method.backbone.parameters(), *method.projection_head.parameters()]


def target_params(method: BYOL) -> list[nn.Parameter]:
    return [*method.target_backbone.parameters(), *method.target_projection_head.parameters()]


@torch.no_grad()
def perturb_target(method: BYOL) -> None:
    """Move the target away from the online network, so a mix-up of the two shows in the numbers."""
    for p in target_params(method):
        p.add_(0.2 * torch.randn_like(p))


def test_defaults_are_the_papers_and_config_ready():
    defaults = {k: p.default for k, p in inspect.signature(BYOL.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "projection_dim": 256,
        "hidden_dim": 4096,
        "prediction_hidden_dim": 4096,
        "momentum_start": 0.996,
        "momentum_end": 1.0,
    }
    component_schema("method", "name", "byol", BYOL, skip=("backbone",))  # typed config from the signature
    method = create_method("byol", tiny_backbone())
    assert isinstance(method, BYOL) and method.num_views == 2
    proj = [m for m in method.projection_head.layers if isinstance(m, nn.Linear)]
    pred = [m for m in method.prediction_head.layers if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in proj] == [(32, 4096), (4096, 256)]
    assert [(m.in_features, m.out_features) for m in pred] == [(256, 4096), (4096, 256)]
    assert [type(m).__name__ for m in method.projection_head.layers] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    # the target starts as an exact, frozen copy
    for o, t in zip(online_params(method), target_params(method), strict=True):
        assert torch.equal(o, t) and o is not t and not t.requires_grad


def test_loss_is_symmetric_normalised_mse_against_the_target():
    method = make()
    perturb_target(method)
    x1, x2 = views()
    out = method([x1, x2])
    with torch.no_grad():
        p1 = method.prediction_head(method.projection_head(method.backbone(x1))).double()
        p2 = method.prediction_head(method.projection_head(method.backbone(x2))).double()
        t1 = method.target_projection_head(method.target_backbone(x1)).double()
        t2 = method.target_projection_head(method.target_backbone(x2)).double()
        o1 = method.projection_head(method.backbone(x1)).double()  # the online projections (wrong targets)
        o2 = method.projection_head(method.backbone(x2)).double()

    def nmse(p, z):  # ||p/|p| - z/|z|||^2 = 2 - 2 cos, batch mean
        return (p / p.norm(dim=1, keepdim=True) - z / z.norm(dim=1, keepdim=True)).pow(2).sum(dim=1).mean()

    expected = nmse(p1, t2) + nmse(p2, t1)
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert abs((nmse(p1, o2) + nmse(p2, o1)).item() - expected.item()) > 1e-3  # the test can tell them apart
    assert abs((nmse(p1, t1) + nmse(p2, t2)).item() - expected.item()) > 1e-3
    assert set(out.metrics) == {"loss", "momentum"}
    assert out.metrics["loss"].item() == out.loss.item() and not out.metrics["loss"].requires_grad


def test_gradients_reach_the_online_network_only():
    method = make()
    method(views()).loss.backward()
    for name, p in method.named_parameters():
        if name.startswith("target_"):
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert method.prediction_head.layers[0].weight.grad.abs().sum() > 0
    assert method.backbone.features[0][0].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("step,total", [(0, 20), (7, 20), (20, 20)])
def test_ema_update_follows_the_cosine_schedule(step, total):
    method = make()
    perturb_target(method)
    method.set_progress(Progress(step=step, total_steps=total))
    m = 1 - (1 - 0.996) * (math.cos(math.pi * step / total) + 1) / 2
    method.train()
    out = method(views())  # moves the online BatchNorm running statistics
    assert out.metrics["momentum"].item() == pytest.approx(m, abs=1e-7)
    online = [p.detach().clone() for p in online_params(method)]
    before = [p.detach().clone() for p in target_params(method)]
    method.after_optimizer_step()
    for o, t0, t1 in zip(online, before, target_params(method), strict=True):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * o, rtol=0, atol=1e-6)
    for o, o1 in zip(online, online_params(method), strict=True):
        assert torch.equal(o, o1)  # the online network is left alone
    online_buffers = [*method.backbone.buffers(), *method.projection_head.buffers()]
    target_buffers = [*method.target_backbone.buffers(), *method.target_projection_head.buffers()]
    for b, tb in zip(online_buffers, target_buffers, strict=True):
        assert torch.equal(b, tb)
    if step == total:
        assert all(torch.equal(t0, t1) for t0, t1 in zip(before, target_params(method), strict=True))


def test_wrong_views_are_refused():
    method = make()
    x = torch.randn(4, 1, 16, 16)
    for bad in ([x], [x, x, x]):
        with pytest.raises(ValueError, match="2 views"):
            method(bad)
    with pytest.raises(TypeError):
        method(x)
    with pytest.raises(ValueError, match="batch size"):
        method([x, x[:3]])


def test_state_dict_round_trip_keeps_the_target():
    method = make()
    perturb_target(method)
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    other = make()
    assert not torch.equal(target_params(other)[0], target_params(method)[0])
    other.load_state_dict(torch.load(buffer, weights_only=True))
    assert any(k.startswith("target_backbone.") for k in method.state_dict())
    for a, b in zip(target_params(method), target_params(other), strict=True):
        assert torch.equal(a, b) and not b.requires_grad
    method.eval(), other.eval()
    x = views()
    assert method(x).loss.item() == other(x).loss.item()


def test_embed_is_the_online_backbone():
    method = make().eval()
    perturb_target(method)
    x = torch.randn(5, 1, 16, 16)
    features = method.embed(x)
    assert features.shape == (5, 32)
    assert torch.equal(features, method.backbone(x))


def test_training_on_digits_lowers_the_loss():
    method = make(momentum_start=0.99)
    target_before = [p.detach().clone() for p in target_params(method)]
    before = fixed_batch_loss(method)
    losses = train_on_digits(method)
    after = fixed_batch_loss(method)
    assert all(math.isfinite(v) for v in losses)
    assert after < 0.7 * before, (before, after, losses)
    assert any(not torch.equal(a, b) for a, b in zip(target_before, target_params(method), strict=True))
