"""Labelled synthetic 1-D signals (noisy periodic waveforms) for sequence methods such as CPC; always offline.
The registered data set ``synthetic-signals`` (:mod:`contrastkit.data.sequence_dataset`) is built from them."""

from __future__ import annotations

import math

import torch
from torch import Tensor

WAVEFORMS = ("sine", "square", "sawtooth", "triangle")


def waveform(name: str, cycle: Tensor) -> Tensor:
    """The unit-amplitude waveform ``name`` at cycle positions ``cycle`` (any shape, values in [0, 1))."""
    if name == "sine":
        return torch.sin(2 * math.pi * cycle)
    if name == "square":
        return 1 - 2 * (cycle >= 0.5).to(cycle.dtype)
    if name == "sawtooth":
        return 2 * cycle - 1
    if name == "triangle":
        return 1 - 4 * (cycle - 0.5).abs()
    raise ValueError(f"unknown waveform {name!r}; known: {', '.join(WAVEFORMS)}")


def class_names(
    num_classes: int, period_range: tuple[float, float] = (8.0, 32.0), random_waveform: bool = False
) -> list[str]:
    """Each class of :func:`synthetic_signals`: ``"<waveform> <period band>"`` (``"square 8-32"``), or the band."""
    bands = _bands(num_classes, period_range, random_waveform)
    if random_waveform:
        return [f"{lo:g}-{hi:g}" for lo, hi in bands]
    return [f"{WAVEFORMS[c % 4]} {bands[c // 4][0]:g}-{bands[c // 4][1]:g}" for c in range(num_classes)]


def _bands(num_classes: int, period_range: tuple[float, float], one_per_class: bool) -> list[tuple[float, float]]:
    """Period bands splitting ``period_range`` into equal parts on a log scale: one per class, or one per four."""
    lo, hi = period_range
    n = num_classes if one_per_class else math.ceil(num_classes / len(WAVEFORMS))
    edges = [lo * (hi / lo) ** (i / n) for i in range(n + 1)]
    return [(round(edges[i], 3), round(edges[i + 1], 3)) for i in range(n)]


def synthetic_signals(
    n: int,
    length: int = 256,
    num_classes: int = 4,
    seed: int = 0,
    noise: float = 0.3,
    period_range: tuple[float, float] = (8.0, 32.0),
    amplitude_range: tuple[float, float] = (0.5, 1.5),
    random_waveform: bool = False,
) -> tuple[Tensor, Tensor]:
    """Noisy periodic signals whose class is a waveform shape and a period band, or the period band alone.

    By default class ``c`` has waveform ``WAVEFORMS[c % 4]`` (sine, square, sawtooth, triangle) and period band
    ``c // 4``: ``period_range`` (in samples) is split into ``ceil(num_classes / 4)`` equal bands on a log scale.
    With ``num_classes <= 4`` all classes share one band, so only the shape tells them apart. With
    ``random_waveform=True`` the range is split into ``num_classes`` bands, class ``c`` is band ``c`` and each
    signal's waveform is drawn at random: a nuisance, like the phase and the amplitude. Each signal draws its
    period log-uniformly within its band, a uniform random phase, an amplitude uniform in ``amplitude_range`` and
    white Gaussian noise of standard deviation ``noise``.

    Args:
        n: number of signals; classes are balanced (``n // num_classes`` each, the first ``n % num_classes``
            classes one more) and shuffled.
        length: samples per signal.
        num_classes: number of classes (>= 1).
        seed: the seed of a private ``torch.Generator``: the same arguments give the same data.
        noise: standard deviation of the additive Gaussian noise.
        period_range: ``(shortest, longest)`` period in samples (> 2 each: above the Nyquist limit).
        amplitude_range: ``(low, high)`` of the uniform amplitude.
        random_waveform: classes are period bands only; every signal gets a random waveform.

    Returns:
        ``signals`` float32 ``(n, 1, length)`` and ``labels`` int64 ``(n,)`` in ``[0, num_classes)``.
    """
    if n < 0 or length < 1 or num_classes < 1:
        raise ValueError(f"need n >= 0, length >= 1 and num_classes >= 1, got {n}, {length}, {num_classes}")
    lo, hi = period_range
    if not 2 < lo <= hi:
        raise ValueError(f"period_range must be (low, high) with 2 < low <= high, got {period_range}")
    g = torch.Generator().manual_seed(seed)
    labels = (torch.arange(n) % num_classes)[torch.randperm(n, generator=g)]  # (n,)
    if random_waveform:
        shape = torch.randint(len(WAVEFORMS), (n,), generator=g)  # (n,)
        band_of = labels
    else:
        shape = labels % len(WAVEFORMS)  # (n,)
        band_of = labels // len(WAVEFORMS)
    bands = torch.tensor(_bands(num_classes, period_range, random_waveform), dtype=torch.float64)  # (bands, 2)
    band = bands[band_of].log()  # (n, 2)
    u = torch.rand(n, generator=g, dtype=torch.float64)  # (n,)
    period = (band[:, 0] + u * (band[:, 1] - band[:, 0])).exp()  # (n,) log-uniform in the band
    phase = torch.rand(n, generator=g, dtype=torch.float64)  # (n,)
    amplitude = torch.empty(n, dtype=torch.float64).uniform_(*amplitude_range, generator=g)  # (n,)
    t = torch.arange(length, dtype=torch.float64)  # (length,)
    cycle = (t / period[:, None] + phase[:, None]) % 1.0  # (n, length)
    signals = torch.empty(n, length, dtype=torch.float64)  # (n, length)
    for i, name in enumerate(WAVEFORMS):
        rows = shape == i
        signals[rows] = waveform(name, cycle[rows])
    signals = amplitude[:, None] * signals + noise * torch.randn(n, length, generator=g, dtype=torch.float64)
    return signals.float().unsqueeze(1), labels  # (n, 1, length) float32, (n,) int64
