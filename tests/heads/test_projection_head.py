import pytest
import torch
from lightly.models.modules import heads as lh
from torch import nn

from contrastkit.heads import PredictionHead, ProjectionHead


def _linears(head):
    return [m for m in head.modules() if isinstance(m, nn.Linear)]


def _kinds(head):
    return [type(m).__name__ for m in head.layers]


def _same_as_lightly(ours, theirs, input_dim, train=True):
    assert _kinds(ours) == _kinds(theirs)
    ours.load_state_dict(theirs.state_dict())  # strict: same keys and shapes
    ours.train(train)
    theirs.train(train)
    x = torch.randn(8, input_dim)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("num_layers", [1, 2, 3, 4])
def test_projection_shapes_and_structure(num_layers):
    head = ProjectionHead(16, 32, 8, num_layers=num_layers)
    assert head(torch.randn(5, 16)).shape == (5, 8)
    linears = _linears(head)
    assert len(linears) == num_layers
    assert [lin.out_features for lin in linears] == [32] * (num_layers - 1) + [8]
    layers = list(head.layers)
    for i, m in enumerate(layers):
        if isinstance(m, nn.Linear):
            followed_by_bn = i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm1d)
            assert (m.bias is None) == followed_by_bn
    assert not isinstance(layers[-1], (nn.ReLU, nn.BatchNorm1d))  # default: plain Linear output
    assert sum(isinstance(m, nn.BatchNorm1d) for m in layers) == num_layers - 1


def test_projection_last_batch_norm_and_options():
    head = ProjectionHead(16, 32, 8, num_layers=3, last_batch_norm=True, last_affine=False, activation=nn.GELU)
    assert _kinds(head) == ["Linear", "BatchNorm1d", "GELU"] * 2 + ["Linear", "BatchNorm1d"]
    assert not head.layers[-1].affine and all(lin.bias is None for lin in _linears(head))
    plain = ProjectionHead(16, 32, 8, batch_norm=False)
    assert _kinds(plain) == ["Linear", "ReLU", "Linear"] and all(lin.bias is not None for lin in _linears(plain))
    with pytest.raises(ValueError):
        ProjectionHead(16, 32, 8, num_layers=0)


def test_from_blocks():
    head = ProjectionHead.from_blocks([(4, 6, nn.BatchNorm1d(6), nn.ReLU()), (6, 2, None, None)])
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head(torch.randn(3, 4)).shape == (3, 2)


@pytest.mark.parametrize("num_layers", [2, 3])
@pytest.mark.parametrize("train", [True, False])
def test_equals_lightly_simclr(num_layers, train):
    # lightly's SimCLRProjectionHead puts an (affine) BN on the output as well.
    theirs = lh.SimCLRProjectionHead(16, 32, 8, num_layers=num_layers)
    ours = ProjectionHead(16, 32, 8, num_layers=num_layers, last_batch_norm=True)
    _same_as_lightly(ours, theirs, 16, train)
    theirs = lh.SimCLRProjectionHead(16, 32, 8, num_layers=num_layers, batch_norm=False)
    _same_as_lightly(ProjectionHead(16, 32, 8, num_layers=num_layers, batch_norm=False), theirs, 16, train)


def test_equals_lightly_byol_simsiam_barlow():
    _same_as_lightly(ProjectionHead(16, 40, 8), lh.BYOLProjectionHead(16, 40, 8), 16)
    simsiam = ProjectionHead(16, 32, 24, num_layers=3, last_batch_norm=True, last_affine=False)
    _same_as_lightly(simsiam, lh.SimSiamProjectionHead(16, 32, 24), 16)
    _same_as_lightly(ProjectionHead(16, 48, 48, num_layers=3), lh.BarlowTwinsProjectionHead(16, 48, 48), 16)


def test_prediction_head_matches_lightly():
    head = PredictionHead(8, 20, 8)
    assert _kinds(head) == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    assert head.layers[0].bias is None and head.layers[-1].bias is not None
    assert head(torch.randn(4, 8)).shape == (4, 8)
    _same_as_lightly(PredictionHead(8, 20, 8), lh.BYOLPredictionHead(8, 20, 8), 8)
    _same_as_lightly(PredictionHead(24, 6, 24), lh.SimSiamPredictionHead(24, 6, 24), 24)
