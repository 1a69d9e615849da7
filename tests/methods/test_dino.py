import inspect
import io
import math

import pytest
import torch
from torch import nn

from contrastkit.methods import Progress, create_method
from contrastkit.methods.dino import DINO
from contrastkit.train.config import component_schema
from tests.methods.digit_views import multi_crop, tiny_backbone, train_on_digits


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one intra-op thread is faster, most of all on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SMALL = {"output_dim": 48, "hidden_dim": 24, "bottleneck_dim": 8, "warmup_teacher_temp_epochs": 5}


def make(**kwargs) -> DINO:
    return DINO(tiny_backbone(), **{**SMALL, **kwargs})


def crops(b: int = 6, num_local: int = 3) -> list[torch.Tensor]:
    """Two 16x16 global crops, then ``num_local`` 8x8 local crops."""
    return [torch.randn(b, 1, 16, 16) for _ in range(2)] + [torch.randn(b, 1, 8, 8) for _ in range(num_local)]


def student_params(method: DINO) -> list[nn.Parameter]:
    return [*method.backbone.parameters(), *method.head.parameters()]


def teacher_params(method: DINO) -> list[nn.Parameter]:
    return [*method.teacher_backbone.parameters(), *method.teacher_head.parameters()]


@torch.no_grad()
def perturb_teacher(method: DINO) -> None:
    for p in teacher_params(method):
        p.add_(0.2 * torch.randn_like(p))


def last_layer_v(head) -> nn.Parameter:
    return head.last_layer.parametrizations.weight.original1  # the weight-norm direction (K, bottleneck_dim)


def test_defaults_are_the_papers_and_config_ready():
    defaults = {k: p.default for k, p in inspect.signature(DINO.__init__).parameters.items() if k != "self"}
    assert defaults == {
        "backbone": inspect.Parameter.empty,
        "output_dim": 65536,
        "hidden_dim": 2048,
        "bottleneck_dim": 256,
        "num_layers": 3,
        "batch_norm": False,
        "norm_last_layer": True,
        "teacher_temp": 0.07,
        "warmup_teacher_temp": 0.04,
        "warmup_teacher_temp_epochs": 30,
        "student_temp": 0.1,
        "center_momentum": 0.9,
        "momentum_start": 0.996,
        "momentum_end": 1.0,
        "freeze_last_layer": 1,
    }
    component_schema("method", "name", "dino", DINO, skip=("backbone",))
    method = create_method("dino", tiny_backbone(), output_dim=48, hidden_dim=24, bottleneck_dim=8)
    assert isinstance(method, DINO) and DINO.num_views is None
    assert method.criterion.student_temp == 0.1 and method.criterion.center_momentum == 0.9
    for s, t in zip(student_params(method), teacher_params(method), strict=True):
        assert torch.equal(s, t) and s is not t and not t.requires_grad


def test_teacher_sees_only_the_global_crops_and_crops_are_grouped_by_size():
    method = make()
    calls: dict[str, list[tuple[int, ...]]] = {"backbone": [], "teacher_backbone": [], "head": [], "teacher_head": []}
    for name in calls:
        getattr(method, name).register_forward_pre_hook(lambda mod, args, name=name: calls[name].append(args[0].shape))
    b = 6
    out = method(crops(b=b, num_local=3))
    assert calls["teacher_backbone"] == [(2 * b, 1, 16, 16)]  # both global crops in one batch, no local crop
    assert calls["teacher_head"] == [(2 * b, 32)]
    assert calls["backbone"] == [(2 * b, 1, 16, 16), (3 * b, 1, 8, 8)]  # one batch per resolution
    assert calls["head"] == [(5 * b, 32)]  # the head runs once on every crop
    assert torch.isfinite(out.loss)
    for c in calls.values():
        c.clear()
    method(crops(b=b, num_local=0))  # two global crops alone are enough
    assert calls["backbone"] == [(2 * b, 1, 16, 16)] and calls["teacher_backbone"] == [(2 * b, 1, 16, 16)]


@pytest.mark.parametrize("epoch", [0.0, 2.5, 7.0])
def test_loss_is_cross_entropy_to_the_centred_sharpened_teacher(epoch):
    method = make().eval()  # per-sample outputs: a per-crop reference must agree with the grouped batches
    perturb_teacher(method)
    with torch.no_grad():
        method.criterion.center.copy_(0.3 * torch.randn(1, 48))
    center = method.criterion.center.clone().double()  # (1, K)
    views = crops(b=5, num_local=3)
    method.set_progress(Progress(step=3, total_steps=10, epoch=epoch))
    out = method(views)
    temp = 0.04 + (0.07 - 0.04) * epoch / (5 - 1) if epoch < 5 else 0.07  # linear warm-up over 5 epochs
    with torch.no_grad():
        s = [method.head(method.backbone(v)).double() for v in views]  # V x (B, K)
        t = [method.teacher_head(method.teacher_backbone(v)).double() for v in views[:2]]  # 2 x (B, K)
    q = [torch.softmax((ti - center) / temp, dim=1) for ti in t]
    log_p = [torch.log_softmax(sj / 0.1, dim=1) for sj in s]
    terms = [-(q[i] * log_p[j]).sum(dim=1).mean() for i in range(2) for j in range(len(views)) if j != i]
    expected = sum(terms) / len(terms)
    assert len(terms) == 2 * 5 - 2
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert out.metrics["teacher_temp"].item() == pytest.approx(temp, abs=1e-7)
    # the centre moved towards the mean teacher output of the global crops
    new_center = 0.9 * center + 0.1 * torch.cat(t).mean(dim=0, keepdim=True)
    torch.testing.assert_close(method.criterion.center.double(), new_center, rtol=0, atol=1e-6)


def test_teacher_temperature_follows_the_linear_warmup():
    method = make()
    views = crops(b=4, num_local=1)
    for epoch in [0.0, 1.0, 2.5, 4.0, 4.5, 5.0, 12.0]:
        method.set_progress(Progress(epoch=epoch))
        expected = 0.04 + 0.03 * min(epoch / 4, 1.0) if epoch < 5 else 0.07
        assert method(views).metrics["teacher_temp"].item() == pytest.approx(expected, abs=1e-7), epoch
    default = DINO(tiny_backbone(), output_dim=16, hidden_dim=8, bottleneck_dim=4)  # paper: 0.04 -> 0.07 in 30
    default.set_progress(Progress(epoch=15.0))
    expected = 0.04 + 0.03 * 15 / 29
    assert default(views).metrics["teacher_temp"].item() == pytest.approx(expected, abs=1e-7)


def test_last_layer_is_frozen_during_the_first_epoch():
    method = make()
    views = crops()
    for epoch, frozen in [(0.0, True), (0.9, True), (1.0, False), (2.3, False)]:
        method.zero_grad(set_to_none=True)
        method.set_progress(Progress(epoch=epoch))
        method(views).loss.backward()
        assert last_layer_v(method.head).grad is not None  # backward did reach it
        method.before_optimizer_step()
        assert (last_layer_v(method.head).grad is None) == frozen, epoch
        for name, p in method.named_parameters():
            if p.requires_grad and "last_layer" not in name:
                assert p.grad is not None, name
    # an optimiser step in epoch 0 leaves the last layer where it is and moves the rest
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.1)
    optimizer.zero_grad(set_to_none=True)
    method.set_progress(Progress(epoch=0.5))
    method(views).loss.backward()
    method.before_optimizer_step()
    v_before = last_layer_v(method.head).detach().clone()
    w_before = method.head.layers[0].weight.detach().clone()
    optimizer.step()
    assert torch.equal(last_layer_v(method.head), v_before)
    assert not torch.equal(method.head.layers[0].weight, w_before)
    never = make(freeze_last_layer=0)
    never(views).loss.backward()
    never.before_optimizer_step()
    assert last_layer_v(never.head).grad is not None


def test_teacher_gets_no_gradient():
    method = make()
    method(crops()).loss.backward()
    for name, p in method.named_parameters():
        if name.startswith("teacher_"):
            assert not p.requires_grad and p.grad is None, name


@pytest.mark.parametrize("step,total", [(0, 50), (13, 50), (50, 50)])
def test_teacher_ema_follows_the_cosine_schedule(step, total):
    method = make()
    perturb_teacher(method)
    method.set_progress(Progress(step=step, total_steps=total))
    m = 1 - (1 - 0.996) * (math.cos(math.pi * step / total) + 1) / 2
    assert method(crops()).metrics["momentum"].item() == pytest.approx(m, abs=1e-7)
    student = [p.detach().clone() for p in student_params(method)]
    before = [p.detach().clone() for p in teacher_params(method)]
    method.after_optimizer_step()
    for s, t0, t1 in zip(student, before, teacher_params(method), strict=True):
        torch.testing.assert_close(t1, m * t0 + (1 - m) * s, rtol=0, atol=1e-6)
    for s, s1 in zip(student, student_params(method), strict=True):
        assert torch.equal(s, s1)


def test_wrong_views_are_refused():
    method = make()
    with pytest.raises(ValueError, match="2 global views"):
        method(crops()[:1])
    with pytest.raises(ValueError, match="2 global views"):
        method([])
    with pytest.raises(TypeError):
        method(torch.randn(4, 1, 16, 16))
    views = crops(b=4)
    views[3] = views[3][:3]
    with pytest.raises(ValueError, match="batch size"):
        method(views)


def test_state_dict_round_trip_keeps_teacher_and_centre():
    method = make()
    perturb_teacher(method)
    method(crops())  # moves the centre
    buffer = io.BytesIO()
    torch.save(method.state_dict(), buffer)
    buffer.seek(0)
    other = make()
    other.load_state_dict(torch.load(buffer, weights_only=True))
    keys = method.state_dict().keys()
    assert any(k.startswith("teacher_backbone.") for k in keys) and any(k.startswith("teacher_head.") for k in keys)
    for a, b in zip(teacher_params(method), teacher_params(other), strict=True):
        assert torch.equal(a, b) and not b.requires_grad
    assert torch.equal(method.criterion.center, other.criterion.center)
    assert method.criterion.center.abs().sum() > 0
    method.eval(), other.eval()
    views = crops()
    assert method(views).loss.item() == other(views).loss.item()


def test_embed_is_the_student_backbone():
    method = make().eval()
    x = torch.randn(5, 1, 16, 16)
    assert method.embed(x).shape == (5, 32)
    assert torch.equal(method.embed(x), method.backbone(x))


def test_training_on_digits_stays_finite_and_moves_the_teacher():
    method = make(warmup_teacher_temp_epochs=2, momentum_start=0.99)
    teacher_before = [p.detach().clone() for p in teacher_params(method)]
    losses = train_on_digits(method, multi_crop)
    assert all(math.isfinite(v) for v in losses), losses
    assert any(not torch.equal(a, b) for a, b in zip(teacher_before, teacher_params(method), strict=True))
    assert torch.isfinite(method.criterion.center).all() and method.criterion.center.abs().sum() > 0
