import math

import pytest
import torch
from sklearn.datasets import load_digits
from torch import nn

from contrastkit.backbones import create_backbone
from contrastkit.losses import SupConLoss
from contrastkit.methods import Progress, create_method, get_method
from contrastkit.methods.supcon import SupCon
from tests.methods.digit_views import digit_images, two_views


def small_supcon(**kwargs) -> SupCon:
    return SupCon(create_backbone("small_cnn", in_chans=1), **{"hidden_dim": 32, "projection_dim": 16, **kwargs})


def views_and_labels(n: int = 8) -> tuple[list[torch.Tensor], torch.Tensor]:
    return [torch.randn(n, 1, 16, 16), torch.randn(n, 1, 16, 16)], torch.tensor([0, 1, 0, 2, 1, 0, 3, 3])[:n]


def supcon_out64(z1: torch.Tensor, z2: torch.Tensor, labels: torch.Tensor, t: float) -> torch.Tensor:
    """Khosla et al. eq. 2 (L_out) written out anchor by anchor over the 2N views, in float64."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)  # (2N, D)
    lab = torch.cat([labels, labels])
    losses = []
    for i in range(z.shape[0]):
        others = [a for a in range(z.shape[0]) if a != i]
        log_denominator = torch.logsumexp(torch.stack([z[i] @ z[a] / t for a in others]), 0)
        positives = [p for p in others if lab[p] == lab[i]]
        losses.append(-sum(z[i] @ z[p] / t - log_denominator for p in positives) / len(positives))
    return torch.stack(losses).mean()


def test_defaults_registry_and_flags():
    method = SupCon(create_backbone("small_cnn", in_chans=1))
    assert get_method("supcon") is SupCon and SupCon.uses_labels and SupCon.num_views == 2
    assert [m.out_features for m in method.projection_head.modules() if isinstance(m, nn.Linear)] == [2048, 128]
    assert not any(isinstance(m, nn.BatchNorm1d) for m in method.projection_head.modules())
    assert method.criterion.temperature == 0.1 and method.criterion.gather_distributed
    built = create_method("supcon", create_backbone("small_cnn", in_chans=1), temperature=0.07, batch_norm=True)
    assert built.criterion.temperature == 0.07
    assert any(isinstance(m, nn.BatchNorm1d) for m in built.projection_head.modules())


def test_loss_matches_float64_reference_and_supcon_loss():
    method = small_supcon()
    views, labels = views_and_labels()
    out = method(views, labels)
    with torch.no_grad():  # train-mode BN on the same 2B batch gives the same projections
        z1, z2 = method.projection_head(method.backbone(torch.cat(views))).chunk(2)
    torch.testing.assert_close(out.loss.double(), supcon_out64(z1, z2, labels, 0.1), rtol=0, atol=1e-5)
    torch.testing.assert_close(out.loss, SupConLoss(temperature=0.1)(torch.stack([z1, z2], dim=1), labels))
    assert out.metrics["loss"].requires_grad is False
    out.loss.backward()
    assert all(p.grad is not None for p in method.parameters())


def test_labels_change_the_loss():
    method = small_supcon()
    views, labels = views_and_labels()
    with torch.no_grad():
        supervised = method(views, labels).loss
        all_distinct = method(views, torch.arange(8)).loss  # every image its own class: SimCLR's NT-Xent
        z1, z2 = method.projection_head(method.backbone(torch.cat(views))).chunk(2)
    torch.testing.assert_close(all_distinct.double(), supcon_out64(z1, z2, torch.arange(8), 0.1), rtol=0, atol=1e-5)
    assert not torch.isclose(supervised, all_distinct)


def test_bf16_autocast_runs_and_matches_float32():
    method = small_supcon()
    views, labels = views_and_labels()
    reference = method(views, labels).loss
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = method(views, labels)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, reference, rtol=0, atol=0.1)


def test_labels_none_is_refused():
    method = small_supcon()
    views, _ = views_and_labels()
    with pytest.raises(ValueError, match=r"SupCon .*needs labelled data"):
        method(views)
    with pytest.raises(ValueError, match="labels=None"):
        method(views, None)


def test_wrong_views_and_labels():
    method = small_supcon()
    views, labels = views_and_labels()
    with pytest.raises(ValueError, match="takes 2 views"):
        method(views[:1], labels)
    with pytest.raises(TypeError, match="list of view tensors"):
        method(views[0], labels)
    with pytest.raises(ValueError, match="labels"):
        method(views, labels[:5])


def test_embed_is_backbone_features():
    method = small_supcon().eval()
    x = torch.randn(4, 1, 16, 16)
    torch.testing.assert_close(method.embed(x), method.backbone(x))
    assert method.embed(x).shape == (4, method.feature_dim)


def test_training_on_digits_lowers_the_loss():
    method = small_supcon(hidden_dim=128, projection_dim=32)
    images, targets = digit_images(), torch.from_numpy(load_digits().target)
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)  # no BN in the head: 0.05 collapses it
    method.train()
    losses = []
    for step in range(30):
        idx = torch.randint(len(images), (64,), generator=generator)
        method.set_progress(Progress(step=step, total_steps=30))
        out = method(two_views(images[idx], generator), targets[idx])
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.15, (first, last, losses)
