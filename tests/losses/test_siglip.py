"""SigLIPLoss against a float64 double sum, open_clip's SigLipLoss and a 2-process gloo run."""

from __future__ import annotations

import math

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from contrastkit.losses.siglip import SigLIPLoss


def _features(n=6, d=5, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    txt = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    return img, txt


def _reference(img, txt, log_scale, bias, normalize=True):
    """float64: -1/N sum_ij log sigmoid(z_ij (exp(log_scale) x_i.y_j + b)), written out pair by pair."""
    x, y = img.double(), txt.double()
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
        y = y / y.norm(dim=1, keepdim=True)
    scale = log_scale.double().exp()
    n = x.shape[0]
    total = x.new_zeros(())
    for i in range(n):
        for j in range(n):
            z = 1.0 if i == j else -1.0
            logit = scale * torch.dot(x[i], y[j]) + bias.double()
            total = total - torch.log(torch.sigmoid(z * logit))
    return total / n


def _grads(loss, inputs):
    return torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("normalize", [True, False])
def test_matches_float64_double_sum_values_and_grads(normalize):
    img, txt = _features()
    loss_fn = SigLIPLoss(init_logit_scale=3.0, init_logit_bias=-2.0, normalize=normalize)
    params = [img, txt, loss_fn.log_logit_scale, loss_fn.logit_bias]
    loss = loss_fn(img, txt)
    assert loss.dtype == torch.float32
    ref = _reference(img, txt, loss_fn.log_logit_scale, loss_fn.logit_bias, normalize=normalize)
    torch.testing.assert_close(loss.double(), ref, rtol=1e-5, atol=1e-6)
    for got, want in zip(_grads(loss, params), _grads(ref, params), strict=True):
        torch.testing.assert_close(got.double(), want.double(), rtol=1e-4, atol=1e-6)


def test_default_init_is_paper_values():
    loss_fn = SigLIPLoss()
    assert math.isclose(loss_fn.log_logit_scale.item(), math.log(10.0), rel_tol=1e-6)
    assert loss_fn.logit_bias.item() == -10.0
    assert {n for n, _ in loss_fn.named_parameters()} == {"log_logit_scale", "logit_bias"}
    frozen = SigLIPLoss(learnable=False)
    assert list(frozen.parameters()) == []
    assert set(frozen.state_dict()) == {"log_logit_scale", "logit_bias"}


def test_matches_open_clip_values_and_grads():
    import open_clip.loss as open_clip_loss

    img, txt = _features(n=8, d=16, seed=1)
    scale = torch.tensor(7.5, requires_grad=True)  # exponentiated, as open_clip passes it
    bias = torch.tensor(-4.0, requires_grad=True)
    theirs = open_clip_loss.SigLipLoss(rank=0, world_size=1)(F.normalize(img), F.normalize(txt), scale, bias)
    ours = SigLIPLoss()(img, txt, logit_scale=scale, logit_bias=bias)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    inputs = [img, txt, scale, bias]
    for got, want in zip(_grads(ours, inputs), _grads(theirs, inputs), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)

    # Owned parameters: d/d(log t) = t * d/dt.
    loss_fn = SigLIPLoss(init_logit_scale=7.5, init_logit_bias=-4.0)
    ours = loss_fn(img, txt)
    theirs = open_clip_loss.SigLipLoss()(F.normalize(img), F.normalize(txt), scale, bias)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    g_log, g_bias = _grads(ours, [loss_fn.log_logit_scale, loss_fn.logit_bias])
    g_scale, g_bias_ref = _grads(theirs, [scale, bias])
    torch.testing.assert_close(g_log, 7.5 * g_scale, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_bias, g_bias_ref, rtol=1e-5, atol=1e-6)


def test_override_scale_and_bias_replace_owned_ones():
    img, txt = _features()
    loss_fn = SigLIPLoss(init_logit_scale=1.0, init_logit_bias=0.0)
    ref = _reference(img, txt, torch.tensor(math.log(4.0)), torch.tensor(-1.5))
    torch.testing.assert_close(loss_fn(img, txt, logit_scale=4.0, logit_bias=-1.5).double(), ref)
    assert not torch.allclose(loss_fn(img, txt).double(), ref)


def test_row_blocks_equal_single_block():
    img, txt = _features(n=7, d=4, seed=2)
    inputs = [img, txt]
    full_fn, block_fn = SigLIPLoss(), SigLIPLoss(block_size=3)
    full, blocked = full_fn(img, txt), block_fn(img, txt)
    torch.testing.assert_close(blocked, full, rtol=1e-6, atol=1e-6)
    full_g = _grads(full, [*inputs, full_fn.log_logit_scale, full_fn.logit_bias])
    block_g = _grads(blocked, [*inputs, block_fn.log_logit_scale, block_fn.logit_bias])
    for got, want in zip(block_g, full_g, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        torch.testing.assert_close(block_fn(img, txt), full)


def test_bf16_autocast_is_finite_float32():
    img, txt = _features(n=16, d=32, seed=3, dtype=torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = SigLIPLoss()(img, txt)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    ref = SigLIPLoss()(img.float(), txt.float())
    torch.testing.assert_close(loss, ref)
    assert all(torch.isfinite(g).all() for g in _grads(loss, [img, txt]))


@pytest.mark.parametrize(
    ("kwargs", "call", "match"),
    [
        ({}, lambda f: f(torch.randn(4), torch.randn(4, 3)), "image_features"),
        ({}, lambda f: f(torch.randn(4, 3), torch.randn(4, 3, 1)), "text_features"),
        ({}, lambda f: f(torch.randn(4, 3), torch.randn(5, 3)), "image_features and text_features"),
        ({}, lambda f: f(torch.randn(0, 3), torch.randn(0, 3)), "image_features"),
        ({}, lambda f: f(torch.full((2, 3), math.nan), torch.randn(2, 3)), "image_features"),
        ({}, lambda f: f(torch.randn(2, 3), torch.full((2, 3), math.inf)), "text_features"),
        (
            {},
            lambda f: f(torch.ones(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long)),
            "image_features",
        ),
        ({"init_logit_scale": 0.0}, None, "init_logit_scale"),
        ({"init_logit_scale": -1.0}, None, "init_logit_scale"),
        ({"init_logit_bias": math.nan}, None, "init_logit_bias"),
        ({"block_size": 0}, None, "block_size"),
    ],
)
def test_bad_inputs_raise_naming_the_argument(kwargs, call, match):
    with pytest.raises(ValueError, match=match):
        loss_fn = SigLIPLoss(**kwargs)
        if call is not None:
            call(loss_fn)


def _distributed_worker(rank, world, tmp_dir, img, txt):
    dist.init_process_group("gloo", init_method=f"file://{tmp_dir}/init", rank=rank, world_size=world)
    try:
        n = img.shape[0] // world
        local_img = img[rank * n : (rank + 1) * n].clone().requires_grad_()
        local_txt = txt[rank * n : (rank + 1) * n].clone().requires_grad_()
        loss_fn = SigLIPLoss(init_logit_scale=5.0, init_logit_bias=-3.0, gather_distributed=True)
        loss = loss_fn(local_img, local_txt)
        g_img, g_txt, g_scale, g_bias = _grads(loss, [local_img, local_txt, *loss_fn.parameters()])
        stacked = torch.stack([loss.detach(), g_scale, g_bias])
        dist.all_reduce(stacked)  # then / world, as DDP averages
        torch.save((stacked / world, g_img, g_txt), f"{tmp_dir}/result{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_gather_distributed_equals_one_process_on_concatenated_batch(tmp_path):
    img, txt = _features(n=8, d=6, seed=4)
    img, txt = img.detach(), txt.detach()
    world = 2
    mp.spawn(_distributed_worker, args=(world, str(tmp_path), img, txt), nprocs=world)
    result = [torch.load(tmp_path / f"result{rank}.pt", weights_only=True) for rank in range(world)]
    full_img, full_txt = img.clone().requires_grad_(), txt.clone().requires_grad_()
    loss_fn = SigLIPLoss(init_logit_scale=5.0, init_logit_bias=-3.0)
    loss = loss_fn(full_img, full_txt)
    g_img, g_txt, g_scale, g_bias = _grads(loss, [full_img, full_txt, *loss_fn.parameters()])
    averaged = result[0][0]
    torch.testing.assert_close(averaged, torch.stack([loss.detach(), g_scale, g_bias]), rtol=1e-5, atol=1e-6)
    n = img.shape[0] // world
    for rank in range(world):
        # Embedding gradients are world x the single-process ones before DDP's division by world.
        rows = slice(rank * n, (rank + 1) * n)
        torch.testing.assert_close(result[rank][1] / world, g_img[rows], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(result[rank][2] / world, g_txt[rows], rtol=1e-5, atol=1e-6)
