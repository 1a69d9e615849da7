"""The report's curves over training (loss, learning rate, online kNN, health), each drawn as PNG bytes.

Static matplotlib images, not plotly: inlined as base64 PNGs they keep the report one small self-contained HTML
file (plotly would inline about 3.5 MB of JavaScript or need a CDN), which looks the same in every browser, e-mail
and CI artifact, and prints. Figures are built on :class:`matplotlib.figure.Figure` with the Agg canvas directly:
no pyplot, no global backend state, no display needed.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from contrastkit.report.run_logs import Series

DPI = 100
COLLAPSE_STD_RATIO = 0.1  # the monitor's complete-collapse threshold (contrastkit.eval.health)


def new_figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    """A figure of ``width`` x ``height`` inches on the Agg canvas (``layout=None`` for a hand-placed grid)."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout=layout)
    FigureCanvasAgg(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def smooth(values: Sequence[float], weight: float | None = None) -> np.ndarray:
    """Exponential moving average (bias-corrected) of ``values``; the weight grows with the series' length."""
    x = np.asarray(values, dtype=np.float64)  # (T,)
    if weight is None:
        weight = float(np.clip(1.0 - 10.0 / max(len(x), 1), 0.0, 0.98))
    out, avg = np.empty_like(x), 0.0
    for i, v in enumerate(x):
        avg = weight * avg + (1.0 - weight) * v
        out[i] = avg / (1.0 - weight ** (i + 1))
    return out


def _missing(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])


def training_figure(loss: tuple[str, Series] | None, lr: Series | None) -> bytes:
    """Loss (raw and smoothed) and learning rate against the optimiser step, side by side."""
    fig = new_figure(11, 3.6)
    ax_loss, ax_lr = fig.subplots(1, 2)
    if loss is not None:
        key, series = loss
        ax_loss.plot(series.steps, series.values, color="tab:blue", alpha=0.3, linewidth=0.8, label="per step")
        ax_loss.plot(series.steps, smooth(series.values), color="tab:blue", linewidth=2, label="smoothed")
        ax_loss.set_xlabel("step")
        ax_loss.set_ylabel(key)
        ax_loss.legend(loc="upper right")
        ax_loss.grid(alpha=0.3)
    else:
        _missing(ax_loss, "train/loss was not logged")
    ax_loss.set_title("training loss")
    if lr is not None:
        ax_lr.plot(lr.steps, lr.values, color="tab:orange", linewidth=2)
        ax_lr.set_xlabel("step")
        ax_lr.set_ylabel("train/lr")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax_lr.grid(alpha=0.3)
    else:
        _missing(ax_lr, "train/lr was not logged")
    ax_lr.set_title("learning rate")
    return to_png(fig)


def knn_figure(top1: Series | None, top5: Series | None) -> bytes:
    """Online kNN top-1 / top-5 accuracy against the epoch."""
    fig = new_figure(7, 3.6)
    ax = fig.subplots()
    for name, series, colour in (("top-1", top1, "tab:green"), ("top-5", top5, "tab:purple")):
        if series is not None:
            epochs = [e + 1 for e in series.epochs]  # logged at the end of epoch e (0-based)
            ax.plot(epochs, series.values, marker="o", color=colour, linewidth=2, label=f"kNN {name}")
            ax.annotate(f"{series.values[-1]:.3f}", (epochs[-1], series.values[-1]), textcoords="offset points",
                        xytext=(4, 4), color=colour)  # fmt: skip
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    ax.set_title("online kNN accuracy on held-out images")
    return to_png(fig)


def health_figure(std_ratio: Series | None, rankme: Series | None, singular_values: np.ndarray | None) -> bytes:
    """Std ratio and RankMe against the epoch (from the logs), and the spectrum of the final embeddings."""
    fig = new_figure(12, 3.6)
    ax_std, ax_rank, ax_spec = fig.subplots(1, 3)
    if std_ratio is not None:
        epochs = [e + 1 for e in std_ratio.epochs]
        ax_std.plot(epochs, std_ratio.values, marker="o", color="tab:blue", linewidth=2)
        ax_std.axhline(1.0, color="tab:green", linestyle="--", linewidth=1, label="uniform on the sphere")
        ax_std.axhline(COLLAPSE_STD_RATIO, color="tab:red", linestyle=":", linewidth=1, label="collapse warning")
        ax_std.set_ylim(0, max(1.1, max(std_ratio.values) * 1.05))
        ax_std.set_xlabel("epoch")
        ax_std.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_std.legend(loc="lower right", fontsize="small")
        ax_std.grid(alpha=0.3)
    else:
        _missing(ax_std, "health/std_ratio was not logged\n(monitor.every_n_epochs=0)")
    ax_std.set_title("std ratio (1 healthy, 0 collapsed)")
    if rankme is not None:
        epochs = [e + 1 for e in rankme.epochs]
        ax_rank.plot(epochs, rankme.values, marker="o", color="tab:orange", linewidth=2)
        ax_rank.set_xlabel("epoch")
        ax_rank.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax_rank.set_ylim(bottom=0)
        ax_rank.grid(alpha=0.3)
    else:
        _missing(ax_rank, "health/rankme was not logged\n(monitor.every_n_epochs=0)")
    ax_rank.set_title("RankMe (effective rank)")
    if singular_values is not None and len(singular_values):
        s = np.asarray(singular_values, dtype=np.float64)  # (min(N, D),)
        ax_spec.semilogy(np.arange(1, len(s) + 1), s / s.max(), color="tab:gray", linewidth=2)
        ax_spec.set_xlabel("component")
        ax_spec.set_ylabel("singular value / largest")
        ax_spec.grid(alpha=0.3, which="both")
    else:
        _missing(ax_spec, "no embeddings")
    ax_spec.set_title("final embeddings: spectrum")
    return to_png(fig)


__all__ = ["health_figure", "knn_figure", "new_figure", "smooth", "to_png", "training_figure"]
