"""Synthetic periodic signals: shapes, balance, determinism, and that each class is the waveform and band it claims."""

import math

import pytest
import torch

from contrastkit.data.synthetic_signals import WAVEFORMS, class_names, synthetic_signals, waveform


def test_shapes_dtypes_and_balanced_labels():
    x, y = synthetic_signals(103, length=64, num_classes=5, seed=3)
    assert x.shape == (103, 1, 64) and x.dtype == torch.float32
    assert y.shape == (103,) and y.dtype == torch.int64
    counts = torch.bincount(y, minlength=5)
    assert counts.tolist() == [21, 21, 21, 20, 20]  # n // C each, the first n % C classes one more
    assert not torch.equal(y, torch.sort(y).values)  # shuffled
    assert torch.isfinite(x).all()


def test_seeded_and_deterministic():
    a = synthetic_signals(20, length=32, seed=1)
    b = synthetic_signals(20, length=32, seed=1)
    c = synthetic_signals(20, length=32, seed=2)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def test_noise_is_additive_gaussian_of_the_given_std():
    clean, y0 = synthetic_signals(200, length=256, seed=5, noise=0.0)
    noisy, y1 = synthetic_signals(200, length=256, seed=5, noise=0.4)
    assert torch.equal(y0, y1)  # the noise is drawn last: same waveforms, phases and amplitudes
    residual = noisy - clean  # (200, 1, 256)
    assert residual.mean().abs() < 0.01
    assert residual.std().item() == pytest.approx(0.4, rel=0.02)


def test_each_class_has_its_waveform_shape():
    x, y = synthetic_signals(80, length=128, num_classes=4, seed=0, noise=0.0, amplitude_range=(1.0, 1.0))
    x = x[:, 0].double()  # (N, L)
    assert x.abs().max() <= 1.0 + 1e-6
    square = x[y == WAVEFORMS.index("square")]
    assert torch.allclose(square.abs(), torch.ones_like(square))  # only +-1
    sawtooth = x[y == WAVEFORMS.index("sawtooth")].diff(dim=1)  # (n, L - 1)
    assert (sawtooth > 0).float().mean() > 0.85  # rises steadily, falls only at the wrap
    for d in sawtooth:
        up = d[d > 0]
        assert torch.allclose(up, up.mean().expand_as(up), atol=1e-5)  # one constant slope: 2 / period
    triangle = x[y == WAVEFORMS.index("triangle")]
    slope = triangle.diff(dim=1).abs()  # (n, L - 1): 4 / period, except at the turning points
    assert ((slope - slope.median(dim=1, keepdim=True).values).abs() < 1e-5).float().mean() > 0.8
    sine = x[y == WAVEFORMS.index("sine")]
    assert sine.abs().max(dim=1).values.min() > 0.9  # reaches (near) its peaks within 128 samples


def test_period_bands_past_four_classes():
    length = 1024
    x, y = synthetic_signals(160, length=length, num_classes=8, seed=2, noise=0.0, period_range=(8.0, 32.0))
    spectrum = torch.fft.rfft(x[:, 0].double(), dim=1).abs()  # (N, L/2 + 1)
    spectrum[:, 0] = 0  # the sawtooth's and square's mean is not the tone
    period = length / spectrum.argmax(dim=1).double()  # (N,) the fundamental, in samples
    edge = 8.0 * 4.0**0.5  # two bands split [8, 32] on a log scale at 16
    short, long = period[y < 4], period[y >= 4]
    tolerance = 1.03  # one frequency bin
    assert short.min() >= 8.0 / tolerance and short.max() <= edge * tolerance
    assert long.min() >= edge / tolerance and long.max() <= 32.0 * tolerance
    assert class_names(8) == [f"{w} 8-16" for w in WAVEFORMS] + [f"{w} 16-32" for w in WAVEFORMS]


def test_random_waveform_makes_the_band_the_class():
    length = 1024
    x, y = synthetic_signals(
        200, length=length, num_classes=4, seed=4, noise=0.0, period_range=(6.0, 48.0), random_waveform=True
    )
    spectrum = torch.fft.rfft(x[:, 0].double(), dim=1).abs()  # (N, L/2 + 1)
    spectrum[:, 0] = 0
    period = length / spectrum.argmax(dim=1).double()  # (N,)
    edges = [6.0 * 8.0 ** (i / 4) for i in range(5)]  # four bands, equal on a log scale
    for c in range(4):
        p = period[y == c]
        assert p.min() >= edges[c] / 1.03 and p.max() <= edges[c + 1] * 1.03
    square = (x[:, 0].abs() - x[:, 0].abs()[:, :1]).abs().amax(dim=1) < 1e-6  # (N,) constant |x|: square waves
    assert all(0 < int(square[y == c].sum()) < int((y == c).sum()) for c in range(4))  # shapes mix in every class
    assert class_names(4, (6.0, 48.0), random_waveform=True)[0] == f"6-{edges[1]:.3f}".rstrip("0")


def test_waveform_values():
    cycle = torch.tensor([0.0, 0.25, 0.5, 0.75])
    assert torch.allclose(waveform("sine", cycle), torch.tensor([0.0, 1.0, 0.0, -1.0]), atol=1e-6)
    assert torch.equal(waveform("square", cycle), torch.tensor([1.0, 1.0, -1.0, -1.0]))
    assert torch.equal(waveform("sawtooth", cycle), torch.tensor([-1.0, -0.5, 0.0, 0.5]))
    assert torch.equal(waveform("triangle", cycle), torch.tensor([-1.0, 0.0, 1.0, 0.0]))
    with pytest.raises(ValueError, match="unknown waveform 'noise'"):
        waveform("noise", cycle)
    assert math.isclose(float(waveform("sine", torch.tensor(1 / 12))), 0.5, abs_tol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n >= 0"),
        ({"num_classes": 0}, "num_classes >= 1"),
        ({"period_range": (2.0, 8.0)}, "2 < low <= high"),
        ({"period_range": (16.0, 8.0)}, "2 < low <= high"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        synthetic_signals(**{"n": 4, **kwargs})
