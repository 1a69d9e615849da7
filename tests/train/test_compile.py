"""``trainer.compile=true``: the backbone is compiled in place, the run trains the same numbers as eager and writes
the same checkpoint keys and encoder file. Compiled here with the ``aot_eager`` backend (the same graph capture and
autograd tracing as inductor, without generating C++: seconds instead of ~20 s); inductor's own speed and numbers
on the CPU are measured in benchmarks/compile.py."""

from __future__ import annotations

import torch

import contrastkit
from contrastkit.train import lit_method
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


def test_a_compiled_run_trains_what_the_eager_run_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(lit_method, "COMPILE_BACKEND", "aot_eager")
    compiled_backbones = []
    original = torch.nn.Module.compile

    def spy(module, *args, **kwargs):
        compiled_backbones.append(type(module).__name__)
        return original(module, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "compile", spy)
    eager = train(tiny_config(tmp_path / "eager", "trainer.max_steps=6"))
    compiled = train(tiny_config(tmp_path / "compiled", "trainer.max_steps=6", "trainer.compile=true"))
    assert compiled_backbones == ["SmallCNN"]  # the backbone, once
    a = torch.load(eager.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(compiled.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert a.keys() == b.keys()  # compiled in place: no "_orig_mod." prefix, resume and export unchanged
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-5)
    x = torch.rand(4, 1, 8, 8)
    expected = contrastkit.load_encoder(eager.encoder)(x)
    torch.testing.assert_close(contrastkit.load_encoder(compiled.encoder)(x), expected, rtol=1e-4, atol=1e-5)
