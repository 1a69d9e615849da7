import copy
import math
import subprocess
import sys

import pytest
import torch
from lightly.utils.scheduler import cosine_schedule
from torch import nn

from contrastkit.heads import ProjectionHead, cosine_momentum, deactivate_requires_grad, update_momentum


def test_update_momentum_formula_float64():
    model = ProjectionHead(6, 10, 4).double()
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.data.normal_()
    model(torch.randn(8, 6, dtype=torch.float64))  # moves the BN running statistics
    before = [p.detach().clone() for p in ema.parameters()]
    m = 0.9
    update_momentum(model, ema, m)
    for p, e0, e1 in zip(model.parameters(), before, ema.parameters(), strict=True):
        torch.testing.assert_close(e1, m * e0 + (1 - m) * p, rtol=0, atol=1e-15)
    for b, eb in zip(model.buffers(), ema.buffers(), strict=True):
        assert torch.equal(b, eb)


def test_update_momentum_edges_and_errors():
    model, ema = nn.Linear(3, 2), nn.Linear(3, 2)
    update_momentum(model, ema, 0.0)
    assert torch.equal(model.weight, ema.weight)
    with pytest.raises(ValueError):
        update_momentum(model, ema, 1.5)
    with pytest.raises(ValueError):
        update_momentum(model, nn.Linear(3, 4), 0.5)


@pytest.mark.parametrize("start,end", [(0.996, 1.0), (0.99, 0.999)])
def test_cosine_momentum(start, end):
    n = 100

    def formula(step):
        return end - (end - start) * (math.cos(math.pi * step / n) + 1) / 2

    assert cosine_momentum(0, n, start, end) == pytest.approx(start, abs=1e-15)
    assert cosine_momentum(n // 2, n, start, end) == pytest.approx((start + end) / 2, abs=1e-15)
    assert cosine_momentum(n, n, start, end) == end
    assert cosine_momentum(n + 5, n, start, end) == end
    for step in [0, 1, 13, 50, 77, 99, 100]:
        assert cosine_momentum(step, n, start, end) == pytest.approx(formula(step), abs=1e-15)
        # lightly divides by max_steps - 1
        lightly_value = cosine_schedule(step, n + 1, start, end)
        assert cosine_momentum(step, n, start, end) == pytest.approx(lightly_value, abs=1e-12)
    assert cosine_momentum(3, 0) == 1.0
    with pytest.raises(ValueError):
        cosine_momentum(-1, n)


def test_deactivate_requires_grad():
    module = ProjectionHead(4, 8, 2)
    assert deactivate_requires_grad(module) is module
    assert not any(p.requires_grad for p in module.parameters())


def test_heads_import_without_lightning():
    code = (
        "import sys, contrastkit.heads as H; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'lightly')]; "
        "assert not bad, bad; print(len(H.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) == 8
