"""A NaN or inf loss stops the run with the step, the loss's parts and the usual causes, or (on_nonfinite=skip)
skips the batch without an update, at most nonfinite_limit times."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from contrastkit.losses.validation import NonFiniteError
from contrastkit.methods import MethodOutput
from contrastkit.train.fit import train
from contrastkit.train.lit_method import LitMethod, NonFiniteLossError
from tests.train.helpers import tiny_config


class Scripted(torch.nn.Module):
    """Stands in for a method: returns the losses it is given, one per step (an exception is raised)."""

    uses_labels = False

    def __init__(self, losses):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.losses = list(losses)

    def set_progress(self, progress):
        pass

    def forward(self, views, labels=None):
        loss = self.losses.pop(0)
        if isinstance(loss, Exception):
            raise loss
        return MethodOutput(self.w * loss, {"loss": torch.tensor(loss), "part": torch.tensor(2.5)})


def module(monkeypatch, losses, **kwargs) -> LitMethod:
    lit = LitMethod(Scripted(losses), None, optim=None, **kwargs)
    optimizer = SimpleNamespace(param_groups=[{"lr": 0.1}])
    trainer = SimpleNamespace(global_step=4, is_global_zero=True, optimizers=[optimizer])
    monkeypatch.setattr(LitMethod, "trainer", property(lambda self: trainer))
    monkeypatch.setattr(LitMethod, "current_epoch", property(lambda self: 0))
    monkeypatch.setattr(LitMethod, "_progress", lambda self, i: None)
    monkeypatch.setattr(LitMethod, "log", lambda self, *a, **k: None)
    return lit


BATCH = (torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))


def test_stop_names_the_step_the_parts_and_the_usual_causes(monkeypatch):
    lit = module(monkeypatch, [float("nan")])
    with pytest.raises(NonFiniteLossError, match=r"step 4: the loss is nan \(loss nan, part 2\.5\)\. Usual causes: a "
                       r"learning rate too high \(optim\.lr\).*on_nonfinite=skip"):  # fmt: skip
        lit.training_step(BATCH, 0)


def test_skip_returns_no_loss_and_stops_past_the_limit(monkeypatch, capsys):
    bad_input = NonFiniteError("z_a contains 3 non-finite values (NaN or inf); shape (4, 8)")
    lit = module(monkeypatch, [float("inf"), 1.0, bad_input, float("nan")], on_nonfinite="skip", nonfinite_limit=2)
    assert lit.training_step(BATCH, 0) is None  # skipped: Lightning makes no update
    assert float(lit.training_step(BATCH, 1).detach()) == 1.0  # a finite step trains as usual
    assert lit.training_step(BATCH, 2) is None  # a loss input with NaN: skipped too
    assert "skipped batch 2 of at most 2: step 4: z_a contains 3 non-finite values" in capsys.readouterr().out
    with pytest.raises(NonFiniteLossError, match=r"3 batches skipped, more than trainer\.nonfinite_limit=2"):
        lit.training_step(BATCH, 3)


def test_a_diverging_run_stops_with_one_clear_error(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"step \d+: .*Usual causes: a learning rate too high"):
        train(tiny_config(tmp_path, "optim.lr=1e30", "trainer.max_epochs=1"))
