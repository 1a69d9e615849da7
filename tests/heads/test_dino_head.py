import warnings

import pytest
import torch
from torch import nn

from contrastkit.heads import DINOHead, cancel_last_layer_gradients


def _g(head):
    return head.last_layer.parametrizations.weight.original0


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_shape_and_structure(num_layers):
    head = DINOHead(16, output_dim=50, hidden_dim=32, bottleneck_dim=8, num_layers=num_layers)
    assert head(torch.randn(4, 16)).shape == (4, 50)
    linears = [m for m in head.layers if isinstance(m, nn.Linear)]
    assert len(linears) == num_layers and linears[-1].out_features == 8
    assert sum(isinstance(m, nn.GELU) for m in head.layers) == num_layers - 1
    assert head.last_layer.bias is None
    for lin in linears:
        assert torch.all(lin.bias == 0)
        assert 0.01 < lin.weight.std().item() < 0.03


def test_batch_norm_option():
    head = DINOHead(16, output_dim=10, hidden_dim=32, bottleneck_dim=8, batch_norm=True)
    kinds = [type(m).__name__ for m in head.layers]
    assert kinds == ["Linear", "BatchNorm1d", "GELU"] * 2 + ["Linear"]
    assert head.layers[0].bias is None


def test_last_layer_unit_norm_kept_after_step():
    head = DINOHead(16, output_dim=30, hidden_dim=32, bottleneck_dim=8)
    ones = torch.ones(30)
    torch.testing.assert_close(head.last_layer.weight.norm(dim=1), ones)
    assert not _g(head).requires_grad
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=1.0)
    head(torch.randn(6, 16)).pow(2).sum().backward()
    opt.step()
    torch.testing.assert_close(head.last_layer.weight.detach().norm(dim=1), ones)
    assert _g(DINOHead(16, 30, 32, 8, norm_last_layer=False)).requires_grad


def test_cancel_last_layer_gradients():
    head = DINOHead(16, output_dim=30, hidden_dim=32, bottleneck_dim=8, norm_last_layer=False)
    for epoch, cancelled in [(0, True), (1, False)]:
        head.zero_grad(set_to_none=True)
        head(torch.randn(6, 16)).pow(2).sum().backward()
        head.cancel_last_layer_gradients(epoch, freeze_epochs=1)
        assert all((p.grad is None) == cancelled for p in head.last_layer.parameters())
        assert all(p.grad is not None for p in head.layers.parameters())
    head(torch.randn(6, 16)).sum().backward()
    cancel_last_layer_gradients(head, epoch=2, freeze_epochs=3)
    assert all(p.grad is None for p in head.last_layer.parameters())


def test_matches_lightly_dino_head():
    from lightly.models.modules.heads import DINOProjectionHead

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lightly uses the deprecated torch.nn.utils.weight_norm
        theirs = DINOProjectionHead(16, 32, 8, 30)
    ours = DINOHead(16, output_dim=30, hidden_dim=32, bottleneck_dim=8)
    state = theirs.state_dict()
    state["last_layer.parametrizations.weight.original0"] = state.pop("last_layer.weight_g")
    state["last_layer.parametrizations.weight.original1"] = state.pop("last_layer.weight_v")
    ours.load_state_dict(state)
    x = torch.randn(5, 16)
    torch.testing.assert_close(ours(x), theirs(x))
