import io
import math
import os
import tempfile

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from contrastkit.backbones import create_backbone
from contrastkit.methods import Progress, create_method, method_params
from contrastkit.methods.moco import MoCo
from tests.losses.multiprocess import run_processes
from tests.methods.digit_views import train_on_digits
from tests.methods.moco_ddp_worker import ddp_methods, ddp_views, ddp_worker

T = 0.2


def small_moco(**kwargs) -> MoCo:
    params = {"projection_dim": 16, "hidden_dim": 32, "queue_size": 20}
    if kwargs.get("version") == 3:
        params.pop("queue_size")
    return MoCo(create_backbone("small_cnn", in_chans=1), **{**params, **kwargs})


def two_views(n: int = 8) -> list[torch.Tensor]:
    return [torch.randn(n, 1, 16, 16), torch.randn(n, 1, 16, 16)]


def unit64(x: torch.Tensor) -> torch.Tensor:
    x = x.double()
    return x / x.norm(dim=-1, keepdim=True)


def queue_infonce64(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, t: float) -> torch.Tensor:
    """MoCo's InfoNCE written out: -log(e^{q.k/t} / (e^{q.k/t} + sum_j e^{q.queue_j/t})), mean over queries."""
    q, k, queue = unit64(q), unit64(k), unit64(queue)
    losses = []
    for i in range(q.shape[0]):
        pos = torch.exp(q[i] @ k[i] / t)
        neg = torch.exp(queue @ q[i] / t).sum()  # (K,) summed
        losses.append(-torch.log(pos / (pos + neg)))
    return torch.stack(losses).mean()


def in_batch_ce64(q: torch.Tensor, k: torch.Tensor, t: float) -> torch.Tensor:
    """MoCo v3's ctr(q, k): cross-entropy of q_i over all keys of the batch, target k_i."""
    logits = unit64(q) @ unit64(k).T / t  # (N, N)
    return F.cross_entropy(logits, torch.arange(q.shape[0]))


def test_per_version_defaults():
    v2 = MoCo(create_backbone("small_cnn", in_chans=1))
    assert v2.queue.shape == (65536, 128) and v2.queue.dtype == torch.float32
    assert v2.prediction_head is None
    assert not any(isinstance(m, nn.BatchNorm1d) for m in v2.projection_head.modules())
    assert [m.out_features for m in v2.projection_head.modules() if isinstance(m, nn.Linear)] == [2048, 128]
    assert v2.base_momentum == 0.999 and not v2.momentum_cosine and not v2.symmetric
    assert v2.criterion.temperature == T
    torch.testing.assert_close(v2.queue.norm(dim=1), torch.ones(65536))

    v3 = MoCo(create_backbone("small_cnn", in_chans=1), version=3)
    assert not hasattr(v3, "queue") and not hasattr(v3, "queue_ptr")
    assert v3.base_momentum == 0.99 and v3.momentum_cosine and v3.symmetric
    assert [m.out_features for m in v3.projection_head.modules() if isinstance(m, nn.Linear)] == [4096, 256]
    assert [m.out_features for m in v3.prediction_head.modules() if isinstance(m, nn.Linear)] == [4096, 256]
    bns = [m for m in v3.projection_head.modules() if isinstance(m, nn.BatchNorm1d)]
    assert len(bns) == 2 and bns[0].affine and not bns[1].affine  # output BN without scale and shift
    assert v3.criterion.temperature == T


def test_bad_arguments():
    backbone = create_backbone("small_cnn", in_chans=1)
    with pytest.raises(ValueError, match="version must be 2 or 3"):
        MoCo(backbone, version=1)
    with pytest.raises(ValueError, match="v3 has no queue"):
        MoCo(backbone, version=3, queue_size=4096)
    with pytest.raises(ValueError, match="queue_size >= 1"):
        MoCo(backbone, queue_size=0)
    with pytest.raises(ValueError, match="momentum"):
        MoCo(backbone, momentum=1.5)


def test_registry_and_typed_config_schema():
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    from contrastkit.train.config import component_schema

    params = method_params("moco")
    assert params["version"].default == 2 and params["queue_size"].default is None
    method = create_method("moco", create_backbone("small_cnn", in_chans=1), version=3, hidden_dim=32)
    assert isinstance(method, MoCo) and method.version == 3
    schema = component_schema("method", "name", "moco", MoCo, skip=("backbone",))
    merged = OmegaConf.to_object(
        OmegaConf.merge(OmegaConf.structured(schema), {"version": 3, "momentum": 0.98, "symmetric": False})
    )
    assert (merged.version, merged.momentum, merged.symmetric, merged.queue_size) == (3, 0.98, False, None)
    with pytest.raises(ValidationError, match="momentum"):
        OmegaConf.merge(OmegaConf.structured(schema), {"momentum": "fast"})


def test_v2_loss_matches_float64_reference():
    method = small_moco()
    x1, x2 = views = two_views()
    queue = method.queue.clone()
    out = method(views)
    with torch.no_grad():
        q, k = method.query(x1), method.key(x2)  # train-mode BN: same batch, same statistics
    torch.testing.assert_close(out.loss.double(), queue_infonce64(q, k, queue, T), rtol=0, atol=1e-5)
    assert out.metrics["loss"].requires_grad is False
    assert out.metrics["momentum"].item() == pytest.approx(0.999)


def test_v2_symmetric_loss_is_mean_of_both_directions():
    method = small_moco(symmetric=True)
    x1, x2 = views = two_views()
    queue = method.queue.clone()
    out = method(views)
    with torch.no_grad():
        ref = (
            queue_infonce64(method.query(x1), method.key(x2), queue, T)
            + queue_infonce64(method.query(x2), method.key(x1), queue, T)
        ) / 2
    torch.testing.assert_close(out.loss.double(), ref, rtol=0, atol=1e-5)
    assert method.queue_ptr.item() == 16  # both views' keys enqueued


def test_queue_enqueues_normalised_keys_at_pointer_and_wraps():
    method = small_moco()  # queue of 20, batches of 8
    expected = method.queue.clone()
    written = []
    for step, rows in enumerate([range(0, 8), range(8, 16), [16, 17, 18, 19, 0, 1, 2, 3]]):
        x1, x2 = two_views()
        method([x1, x2])
        with torch.no_grad():
            k = method.key(x2)
        written.append(k / k.norm(dim=1, keepdim=True))
        expected[list(rows)] = written[-1]
        torch.testing.assert_close(method.queue, expected, rtol=0, atol=1e-6)
        assert method.queue_ptr.item() == [8, 16, 4][step]
    torch.testing.assert_close(method.queue[4:8], written[0][4:], rtol=0, atol=1e-6)  # oldest keys left


def test_queue_keeps_newest_keys_of_a_batch_larger_than_the_queue():
    method = small_moco(queue_size=5)
    x1, x2 = two_views(8)
    method([x1, x2])
    with torch.no_grad():
        k = F.normalize(method.key(x2), dim=1)
    # the last 5 keys written from pointer 0: rows 0..4 hold keys 3..7
    torch.testing.assert_close(method.queue, k[3:], rtol=0, atol=1e-6)
    assert method.queue_ptr.item() == 0


def test_eval_forward_leaves_queue_alone():
    method = small_moco()
    before = method.queue.clone()
    method.eval()
    method(two_views())
    assert torch.equal(method.queue, before) and method.queue_ptr.item() == 0


@pytest.mark.parametrize("version", [2, 3])
def test_key_encoder_gets_no_gradient_and_is_not_optimised(version):
    from contrastkit.optim.parameter_groups import parameter_groups

    method = small_moco(version=version)
    method(two_views()).loss.backward()
    key_params = list(method.key_backbone.parameters()) + list(method.key_projection_head.parameters())
    assert key_params and all(not p.requires_grad and p.grad is None for p in key_params)
    assert all(p.grad is not None for p in method.backbone.parameters())
    assert all(p.grad is not None for p in method.projection_head.parameters())
    optimised = {id(p) for group in parameter_groups(method, 1e-4) for p in group["params"]}
    assert optimised.isdisjoint(id(p) for p in key_params)
    assert {id(p) for p in method.parameters() if p.requires_grad} == optimised


@pytest.mark.parametrize(("version", "step"), [(2, 0), (3, 0), (3, 7)])
def test_after_optimizer_step_is_ema_of_query(version, step):
    method = small_moco(version=version, momentum=0.9)
    method.set_progress(Progress(step=step, total_steps=10))
    with torch.no_grad():  # an "optimiser step": the query encoder moves away from the key encoder
        for p in list(method.backbone.parameters()) + list(method.projection_head.parameters()):
            p.add_(torch.randn_like(p))
    pairs = [(method.backbone, method.key_backbone), (method.projection_head, method.key_projection_head)]
    before = [[p.clone() for p in key.parameters()] for _, key in pairs]
    m = 0.9 if version == 2 else 1 - (1 - 0.9) * (math.cos(math.pi * step / 10) + 1) / 2
    method.after_optimizer_step()
    for (query, key), old in zip(pairs, before, strict=True):
        for p, k0, k1 in zip(query.parameters(), old, key.parameters(), strict=True):
            torch.testing.assert_close(k1, m * k0 + (1 - m) * p, rtol=0, atol=1e-6)
    if version == 3:  # the predictor has no momentum copy
        key_ids = {id(p) for p in method.key_projection_head.parameters()}
        assert key_ids.isdisjoint(id(p) for p in method.prediction_head.parameters())


def test_v3_cosine_momentum_values():
    method = small_moco(version=3)
    values = []
    for step in (0, 50, 100, 150):
        method.set_progress(Progress(step=step, total_steps=100))
        values.append(method.momentum())
    assert values == pytest.approx([0.99, 0.995, 1.0, 1.0])
    method.set_progress(Progress(step=25, total_steps=100))
    assert method.momentum() == pytest.approx(1 - 0.01 * (math.cos(math.pi / 4) + 1) / 2)
    v2 = small_moco()
    v2.set_progress(Progress(step=50, total_steps=100))
    assert v2.momentum() == 0.999
    cos_v2 = small_moco(momentum_cosine=True)
    cos_v2.set_progress(Progress(step=50, total_steps=100))
    assert cos_v2.momentum() == pytest.approx(0.9995)


def test_v3_loss_matches_float64_reference():
    method = small_moco(version=3)
    x1, x2 = views = two_views()
    out = method(views)
    with torch.no_grad():
        q1, q2, k1, k2 = method.query(x1), method.query(x2), method.key(x1), method.key(x2)
    ref = 2 * T * (in_batch_ce64(q1, k2, T) + in_batch_ce64(q2, k1, T))
    torch.testing.assert_close(out.loss.double(), ref, rtol=0, atol=1e-5)
    assert method.prediction_head is not None


def test_v3_not_symmetric_uses_one_direction():
    method = small_moco(version=3, symmetric=False)
    x1, x2 = views = two_views()
    out = method(views)
    with torch.no_grad():
        ref = 2 * T * in_batch_ce64(method.query(x1), method.key(x2), T)
    torch.testing.assert_close(out.loss.double(), ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("version", [2, 3])
def test_bf16_autocast_runs_and_matches_float32(version):
    method = small_moco(version=version, symmetric=True).eval()  # eval: no enqueue between the two calls
    views = two_views()
    reference = method(views).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(views)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, reference, rtol=0, atol=0.1)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in method.backbone.parameters())


def test_state_dict_round_trip_restores_queue_pointer_and_key_encoder():
    method = small_moco()
    for _ in range(3):
        method(two_views())
        method.after_optimizer_step()
    state = method.state_dict()
    assert "queue" in state and "queue_ptr" in state and state["queue_ptr"].item() == 4
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)

    torch.manual_seed(123)
    fresh = small_moco()
    assert not torch.equal(fresh.queue, method.queue)
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh.queue, method.queue) and fresh.queue_ptr.item() == 4
    for a, b in zip(fresh.key_backbone.parameters(), method.key_backbone.parameters(), strict=True):
        assert torch.equal(a, b)
    # training goes on from the restored pointer
    views = two_views()
    fresh(views)
    assert fresh.queue_ptr.item() == 12


def test_views_checks_and_embed():
    method = small_moco()
    with pytest.raises(ValueError, match="takes 2 views"):
        method([*two_views(), torch.randn(8, 1, 16, 16)])
    with pytest.raises(TypeError, match="list of view tensors"):
        method(torch.randn(8, 1, 16, 16))
    x = torch.randn(4, 1, 16, 16)
    method.eval()
    assert method.embed(x).shape == (4, 128)
    torch.testing.assert_close(method.embed(x), method.backbone(x))


@pytest.mark.parametrize("version", [2, 3])
def test_training_on_digits_lowers_the_loss(version):
    backbone = create_backbone("small_cnn", in_chans=1)
    if version == 2:  # a short queue and a fast key encoder, so that 30 steps show learning
        method, batch_size, lr = MoCo(backbone, hidden_dim=128, queue_size=128, momentum=0.9), 32, 0.02
    else:
        method, batch_size, lr = MoCo(backbone, version=3, hidden_dim=128), 64, 0.05
    losses = train_on_digits(method, steps=30, batch_size=batch_size, lr=lr)
    assert all(math.isfinite(x) for x in losses)
    # v2: the random initial queue makes easy negatives; compare once it holds real keys (4 batches)
    start = 4 if version == 2 else 0
    first, last = sum(losses[start : start + 5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.15, (first, last, losses)


def test_two_processes_gather_keys_like_one_process_on_the_whole_batch():
    with tempfile.TemporaryDirectory() as tmp:
        run_processes(ddp_worker, (os.path.join(tmp, "init"), tmp))
        ranks = [torch.load(os.path.join(tmp, f"rank{r}.pt"), weights_only=True) for r in range(2)]
    v2, v3 = ddp_methods()
    x = ddp_views()
    loss2, loss3 = v2(list(x)).loss, v3(list(x)).loss  # one process, all 8 samples
    for r in ranks:  # both processes enqueued the keys of all 8 samples, in rank order
        torch.testing.assert_close(r["queue"], v2.queue, rtol=0, atol=1e-6)
        assert r["ptr"].item() == 8
    # the mean over processes of each one's loss (its queries against the global keys) is the whole-batch loss
    torch.testing.assert_close((ranks[0]["loss2"] + ranks[1]["loss2"]) / 2, loss2, rtol=0, atol=1e-5)
    torch.testing.assert_close((ranks[0]["loss3"] + ranks[1]["loss3"]) / 2, loss3, rtol=0, atol=1e-5)
