"""The report's pictures of the final embeddings: t-SNE map, nearest-neighbour grid, similarity histograms."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import Tensor

from contrastkit.report.figures import new_figure, to_png

MATCH, MISMATCH = "#2ca02c", "#d62728"  # neighbour border colours: same class as the query / another class
MAX_LEGEND = 40  # class names beyond this many are left out of the map's legend


def tsne_2d(embeddings: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (PCA init, fixed seed) of ``(N, D)`` cosine-normalised embeddings: ``(N, 2)``."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(embeddings, dtype=np.float32)  # (N, D)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    n = len(x)
    if n < 3:
        return np.zeros((n, 2), dtype=np.float32)
    perplexity = float(min(30.0, (n - 1) / 3))
    tsne = TSNE(n_components=2, init="pca", perplexity=perplexity, random_state=seed, learning_rate="auto")
    # one thread: t-SNE's OpenMP loops spin-wait, and on a busy machine that made 200 points take 20 s, not 0.5
    with threadpool_limits(limits=1):
        return tsne.fit_transform(x)  # (N, 2)


def _class_colours(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [colormaps["tab20"](i) for i in range(n)]
    return [colormaps["turbo"](i / max(n - 1, 1)) for i in range(n)]


def map_figure(xy: np.ndarray, labels: np.ndarray | None, classes: Sequence[str] | None) -> bytes:
    """Scatter of the 2-D map ``xy`` ``(N, 2)``, coloured by class with a legend of class names when labelled."""
    fig = new_figure(9, 7)
    ax = fig.subplots()
    size = float(np.clip(4000 / max(len(xy), 1), 4, 40))
    if labels is None or not classes:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, color="tab:blue", alpha=0.6, linewidths=0)
    else:
        colours = _class_colours(len(classes))
        for c, name in enumerate(classes):
            mask = labels == c
            if mask.any():
                label = name if c < MAX_LEGEND else None
                ax.scatter(xy[mask, 0], xy[mask, 1], s=size, color=colours[c], alpha=0.75, linewidths=0, label=label)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small", markerscale=max(1.0, 30 / size),
                  ncol=1 if len(classes) <= 20 else 2, title="class")  # fmt: skip
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"t-SNE of {len(xy)} held-out embeddings")
    return to_png(fig)


def _show(ax, image: Tensor) -> None:
    """A uint8 ``(C, H, W)`` image on ``ax`` (gray for one channel), without ticks."""
    array = image.permute(1, 2, 0).numpy()  # (H, W, C)
    if array.shape[2] == 1:
        ax.imshow(array[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(array, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _border(ax, colour: str, width: float = 4.0) -> None:
    for spine in ax.spines.values():
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def neighbours_figure(
    query_images: Tensor,
    query_labels: Tensor | None,
    neighbour_images: Tensor,
    neighbour_labels: Tensor | None,
    similarities: Tensor,
    classes: Sequence[str] | None,
) -> bytes:
    """Rows of a query image followed by its nearest bank images, borders green/red for same/other class.

    Args:
        query_images: ``(Q, C, H, W)`` uint8.
        query_labels: ``(Q,)`` class ids, or None.
        neighbour_images: ``(Q, K, C, H, W)`` uint8, nearest first.
        neighbour_labels: ``(Q, K)`` class ids, or None.
        similarities: ``(Q, K)`` cosine similarities.
        classes: class names, or None.
    """
    q, k = similarities.shape
    width, height = 1.25 * (k + 1) + 0.4, 1.6 * q + 0.2
    fig = new_figure(width, height, layout=None)  # a fixed grid: constrained layout would cost seconds here
    fig.subplots_adjust(left=0.2 / width, right=1 - 0.2 / width, top=1 - 0.1 / height, bottom=0.45 / height)
    fig.subplots_adjust(wspace=0.12, hspace=0.45)
    axes = np.asarray(fig.subplots(q, k + 1, squeeze=False))  # (Q, K + 1)
    labelled = query_labels is not None and neighbour_labels is not None and bool(classes)
    for row in range(q):
        ax = axes[row, 0]
        _show(ax, query_images[row])
        _border(ax, "black", 2.0)
        name = classes[int(query_labels[row])] if labelled else ""
        ax.set_xlabel(f"query\n{name}".strip(), fontsize="small", fontweight="bold")
        for col in range(k):
            ax = axes[row, col + 1]
            _show(ax, neighbour_images[row, col])
            text = f"{float(similarities[row, col]):.3f}"
            if labelled:
                same = int(neighbour_labels[row, col]) == int(query_labels[row])
                _border(ax, MATCH if same else MISMATCH)
                text += f"\n{classes[int(neighbour_labels[row, col])]}"
            else:
                _border(ax, "0.6", 1.0)
            ax.set_xlabel(text, fontsize="small")
    return to_png(fig)


def similarity_figure(positive: np.ndarray, negative: np.ndarray) -> bytes:
    """Overlaid histograms of the cosine similarity of positive and negative pairs, means marked."""
    fig = new_figure(8, 4)
    ax = fig.subplots()
    low = float(min(np.min(positive), np.min(negative)))
    low = max(-1.0, np.floor(low * 10) / 10 - 0.1)
    bins = np.linspace(low, 1.0, 61)
    groups = (
        (positive, "positive pairs (two views of one image)", "tab:green"),
        (negative, "negative pairs (views of different images)", "tab:red"),
    )
    for height, (values, name, colour) in enumerate(groups):
        ax.hist(values, bins=bins, density=True, alpha=0.5, color=colour, label=name)
        mean = float(np.mean(values))
        ax.axvline(mean, color=colour, linestyle="--", linewidth=2)
        ax.annotate(f" mean {mean:.3f}", (mean, 0.95 - 0.1 * height), xycoords=("data", "axes fraction"),
                    ha="left", va="top", color=colour, fontweight="bold")  # fmt: skip
    ax.set_xlim(low, 1.0)
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("density")
    ax.legend(loc="upper left", fontsize="small")
    ax.grid(alpha=0.3)
    return to_png(fig)


__all__ = ["map_figure", "neighbours_figure", "similarity_figure", "tsne_2d"]
