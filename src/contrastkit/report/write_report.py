"""``write_report(run_dir)``: one self-contained HTML page of a training run (``contrastkit report RUN_DIR``).

Sections: ``training`` (loss and learning rate), ``knn`` (online kNN accuracy), ``map`` (t-SNE of held-out
embeddings), ``neighbours`` (nearest bank images of some queries), ``similarity`` (positive vs negative pair
similarities under the run's own views), ``health`` (collapse signals over training and now) and ``config``
(the run config and the final evaluation). Curves come from the CSV logs; the rest is computed now from
``encoder.safetensors`` on the run's data.

Figures are static matplotlib PNGs inlined as ``data:`` URIs rather than plotly: the page stays one small
self-contained file (plotly would inline about 3.5 MB of JavaScript or need a CDN), looks the same in every
browser, e-mail and CI artifact, prints, and matplotlib is already one of contrastkit's dependencies.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from contrastkit.outputs.html_page import Section, flatten, render_page, table
from contrastkit.report.embedding_figures import map_figure, neighbours_figure, similarity_figure, tsne_2d
from contrastkit.report.figures import health_figure, knn_figure, training_figure
from contrastkit.report.run_inputs import (
    ReportData,
    check_run_dir,
    embed,
    load_report_data,
    nearest_neighbours,
    read_config,
    read_final_eval,
    view_pair_embeddings,
)
from contrastkit.report.run_logs import RunLogs, read_run_logs

SECTION_IDS = ("training", "knn", "map", "neighbours", "similarity", "health", "config")
BANK_SIZE = 2000  # training images the neighbours are searched among
PAIR_IMAGES = 512  # images whose view pairs give the similarity histograms and the alignment


def _training_section(logs: RunLogs) -> Section:
    section = Section(
        "training",
        "Training",
        "Loss per optimiser step (faint) and smoothed (bold) on the left, the learning-rate schedule on the right: "
        "the loss should fall fast then flatten; spikes after warm-up often mean the learning rate is too high.",
    )
    loss = logs.first("train/loss", "train/loss_step", "train/loss_epoch")
    lr = logs.get("train/lr")
    if loss is None and lr is None:
        section.notes.append("; ".join(logs.problems) or "the logs hold no train/loss or train/lr values yet")
        return section
    section.image = training_figure(loss, lr)
    return section


def _knn_section(logs: RunLogs) -> Section:
    section = Section(
        "knn",
        "Online kNN accuracy",
        "Accuracy of a k-nearest-neighbour classifier on the embeddings of held-out images, measured at the end of "
        "epochs: a label-free run whose representation improves shows this rising.",
    )
    top1, top5 = logs.get("knn/top1"), logs.get("knn/top5")
    if top1 is None and top5 is None:
        why = "; ".join(logs.problems) if logs.problems else ""
        section.notes.append(
            "no online kNN accuracy in the logs: the monitor was off (monitor.every_n_epochs=0) or the data has no "
            "labels. Turn it on with monitor.every_n_epochs=1." + (f" ({why})" if why else "")
        )
        return section
    section.image = knn_figure(top1, top5)
    return section


def _map_section(data: ReportData | None, data_error: str | None, max_points: int, seed: int) -> Section:
    section = Section(
        "map",
        "Embedding map (t-SNE)",
        "Each dot is a held-out image, placed by t-SNE so that images with similar embeddings land close: "
        "well-separated single-colour islands mean the classes are linearly easy; distances between islands mean "
        "little.",
    )
    if data is None or data.query_emb is None or len(data.query_emb) == 0:
        section.notes.append(data_error or "no images to embed")
        return section
    n = min(max_points, len(data.query_emb))
    xy = tsne_2d(data.query_emb[:n].numpy(), seed=seed)  # (n, 2)
    labels = data.query_labels[:n].numpy() if data.query_labels is not None else None
    if labels is None:
        section.notes.append("the data has no labels: points are not coloured by class")
    section.image = map_figure(xy, labels, data.classes)
    return section


def _pick_queries(labels: torch.Tensor | None, n: int, count: int, seed: int) -> np.ndarray:
    """``count`` query positions, random but covering as many classes as possible first."""
    order = np.random.default_rng(seed).permutation(n)
    if labels is not None:
        seen: Counter[int] = Counter()
        rank = []
        for i in order:
            label = int(labels[i])
            rank.append(seen[label])
            seen[label] += 1
        order = order[np.argsort(rank, kind="stable")]
    return order[:count]


def _neighbours_section(data: ReportData | None, data_error: str | None, queries: int, k: int, seed: int) -> Section:
    section = Section(
        "neighbours",
        "Nearest neighbours",
        "Each row: a held-out query image (left, black border) then its nearest training images by cosine "
        "similarity (printed under each); a green border means the same class as the query, red another class.",
    )
    if data is None or data.query_emb is None or data.bank_emb is None or len(data.bank_emb) == 0:
        section.notes.append(data_error or "no images to search")
        return section
    picked = torch.as_tensor(_pick_queries(data.query_labels, len(data.query_emb), queries, seed))  # (Q,)
    sims, idx = nearest_neighbours(data.query_emb[picked], data.bank_emb, k)  # (Q, K), (Q, K)
    if data.query_labels is None or data.bank_labels is None:
        section.notes.append("the data has no labels: borders are not coloured")
    section.image = neighbours_figure(
        data.query_images[picked],
        data.query_labels[picked] if data.query_labels is not None else None,
        data.bank_images[idx],  # (Q, K, C, H, W)
        data.bank_labels[idx] if data.bank_labels is not None else None,
        sims,
        data.classes,
    )
    return section


def _similarity_section(
    pairs: tuple[torch.Tensor, torch.Tensor] | None, data_error: str | None, recipe: str
) -> Section:
    section = Section(
        "similarity",
        "Positive vs negative pair similarity",
        f"Cosine similarity of two random views of the same image (green, drawn with the run's '{recipe}' views) "
        "and of views of different images (red): the further apart the two humps, the more the encoder ignores "
        "the augmentations while telling images apart; both near 1 means collapse.",
    )
    if pairs is None:
        section.notes.append(data_error or "no images to draw views of")
        return section
    z_a, z_b = (torch.nn.functional.normalize(z, dim=1) for z in pairs)  # (N, D), (N, D)
    positive = (z_a * z_b).sum(1)  # (N,)
    shift = torch.randperm(len(z_b), generator=torch.Generator().manual_seed(0))
    shift = torch.where(shift == torch.arange(len(z_b)), (shift + 1) % len(z_b), shift)  # never an image itself
    negative = (z_a * z_b[shift]).sum(1)  # (N,)
    section.image = similarity_figure(positive.numpy(), negative.numpy())
    return section


def _health_section(logs: RunLogs, data: ReportData | None, pairs: Any, data_error: str | None) -> Section:
    from contrastkit.eval import alignment, embedding_std, rankme, uniformity

    section = Section(
        "health",
        "Representation health",
        "Std ratio (spread of the normalised embeddings per dimension, 1 = uniform, near 0 = collapsed) and RankMe "
        "(how many directions the embeddings really use) over training; right, the singular values of the final "
        "embeddings: a cliff after a few components is dimensional collapse.",
    )
    std_ratio, rank = logs.get("health/std_ratio"), logs.get("health/rankme")
    if std_ratio is None and rank is None:
        section.notes.append("no health metrics in the logs: the monitor was off (monitor.every_n_epochs=0)")
    z = data.query_emb if data is not None else None
    spectrum = None
    if z is not None and len(z) >= 2:
        spectrum = torch.linalg.svdvals(z.double()).numpy()  # (min(N, D),)
        std = embedding_std(z)
        rows: list[list[Any]] = []
        if pairs is not None:
            rows.append(["alignment (positive pairs, lower is better)", alignment(*pairs)])
        rows.append(["uniformity (lower is more uniform)", uniformity(z)])
        rows.append([f"RankMe (of at most {min(z.shape)})", rankme(z)])
        rows.append(["embedding std (normalised, mean over dimensions)", std.std])
        rows.append(["std ratio (std x sqrt(D))", std.ratio])
        section.body = f"<p>Now, on {len(z)} held-out embeddings of dimension {z.shape[1]}:</p>" + table(
            ["metric", "value"], rows
        )
    else:
        section.notes.append(data_error or "no embeddings to measure")
    if std_ratio is not None or rank is not None or spectrum is not None:
        section.image = health_figure(std_ratio, rank, spectrum)
    return section


def _image_text_tables(final_eval: dict[str, Any]) -> list[str]:
    """Zero-shot and image-text retrieval tables of a clip run, before/after retrieval of a text-pairs run."""
    parts = []
    if final_eval.get("zero_shot"):
        header = ["classes", "encoder", "classes competing", "top-1", "top-5", "chance"]
        rows = [[r["classes"], r["encoder"], r["num_classes"], r["top1"], r["top5"], r["chance"]]
                for r in final_eval["zero_shot"]]  # fmt: skip
        parts.append("<h3>Zero-shot classification</h3>" + table(header, rows))
    if final_eval.get("retrieval"):
        header = ["encoder", "pairs", "image->text R@1", "R@10", "text->image R@1", "R@10"]
        rows = []
        for r in final_eval["retrieval"]:
            i2t, t2i = r["image_to_text"], r["text_to_image"]
            rows.append(
                [r["encoder"], r["pairs"], i2t["recall@1"], i2t["recall@10"], t2i["recall@1"], t2i["recall@10"]]
            )
        parts.append("<h3>Image-text retrieval on held-out pairs</h3>" + table(header, rows))
    if "before" in final_eval and "after" in final_eval:
        rows = [[stage, final_eval[stage]["recall@1"], final_eval[stage]["recall@10"], final_eval[stage]["mrr"]]
                for stage in ("before", "after")]  # fmt: skip
        title = f"<h3>Anchor->positive retrieval on {final_eval.get('held_out_pairs', '?')} held-out pairs</h3>"
        parts.append(title + table(["fine-tuning", "R@1", "R@10", "MRR"], rows))
    if final_eval.get("mining"):  # trained on pairs from contrastkit mine-negatives: what mining did
        parts.append("<h3>Hard-negative mining of the training pairs</h3>" + _mining_table(final_eval["mining"]))
    return parts


def _mining_table(mining: dict[str, Any]) -> str:
    """The mining statistics (``<mined>.mining.json``) as a two-column table."""
    settings = mining.get("settings", {})
    quantiles = lambda q: " / ".join(f"{v:.3f}" for v in q) if q else "-"  # noqa: E731
    filters = f"max score {settings.get('max_score')}, relative margin {settings.get('relative_margin')}"
    rows = [
        ["anchors / distinct positives searched", f"{mining.get('anchors')} / {mining.get('corpus')}"],
        ["rows written (anchor, positive, negative)", mining.get("rows")],
        ["rank window, negatives per anchor", f"{settings.get('range')}, {settings.get('num_negatives')}"],
        ["false-negative filters", filters],
        *[[f"skipped: {why}", n] for why, n in mining.get("filtered", {}).items()],
        ["anchors given negatives from below the window", mining.get("below_window", 0)],
        ["anchors left without a negative", mining.get("without_negative")],
        ["anchor-positive similarity (min / 25% / median / 75% / max)", quantiles(mining.get("positive_scores"))],
        ["anchor-negative similarity (min / 25% / median / 75% / max)", quantiles(mining.get("negative_scores"))],
        ["mined with", settings.get("encoder")],
    ]
    return table(["", "value"], rows)


def _config_section(saved: dict[str, Any], final_eval: dict[str, Any] | None) -> Section:
    section = Section(
        "config",
        "Configuration and final evaluation",
        "The run's full configuration (config.json, every default filled in) and, when the run evaluated itself, "
        "its kNN / linear-probe table against a random-init encoder and raw pixels.",
    )
    parts = []
    if final_eval and final_eval.get("rows"):
        header = ["encoder", "dim", "kNN top-1", "kNN top-5", "linear probe"]
        rows = [[r.get("encoder"), r.get("dim"), r.get("knn_top1"), r.get("knn_top5"), r.get("linear_probe")]
                for r in final_eval["rows"]]  # fmt: skip
        counts = (
            f"{final_eval.get('test_images', '?')} held-out images, probes fitted on "
            f"{final_eval.get('train_images', '?')}, kNN k={final_eval.get('k', '?')} over "
            f"{final_eval.get('knn_bank_images', final_eval.get('train_images', '?'))} training images"
        )
        parts.append(f"<h3>Final evaluation</h3><p>{counts}</p>" + table(header, rows))
    parts += _image_text_tables(final_eval or {})
    if len(parts) == 0:
        section.notes.append(
            "no final_eval.json: the run did not evaluate itself (final_eval.enabled=false or no labels)"
        )
    parts.append("<h3>Run config</h3>" + table(["key", "value"], [[k, v] for k, v in flatten(saved)]))
    section.body = "\n".join(parts)
    return section


def write_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    max_points: int = 2000,
    num_queries: int = 8,
    num_neighbours: int = 8,
) -> Path:
    """Write the HTML report of the run in ``run_dir``.

    Args:
        run_dir: a run folder of ``contrastkit train`` (config.json, encoder.safetensors, logs/).
        out: the HTML file (default ``run_dir/report.html``).
        max_points: held-out images embedded for the map, the neighbours' queries and the health numbers.
        num_queries: rows of the neighbour grid.
        num_neighbours: neighbours shown per query.

    Returns:
        The path written.

    Raises:
        FileNotFoundError: ``run_dir``, its ``config.json`` or its ``encoder.safetensors`` is missing (the message
            says what writes it). Missing logs are not an error: those sections say what is missing.
    """
    from contrastkit.backbones.encoder_file import load_encoder

    run_dir = Path(run_dir).expanduser()
    check_run_dir(run_dir)
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    saved, config = read_config(run_dir)
    encoder = load_encoder(run_dir / "encoder.safetensors")
    logs = read_run_logs(run_dir)
    data, data_error, pairs = None, None, None
    if config.views is None:
        data_error = "a text run (no images): the image map, neighbours and view similarities do not apply"
    else:
        try:
            data = load_report_data(config, BANK_SIZE, max_points)
        except (FileNotFoundError, OSError, ValueError) as e:
            data_error = f"the run's data could not be loaded, so this part is left out: {e}"
    if data is not None:
        if len(data.query_images) == 0:
            data, data_error = None, "the run's data has no readable images"
        else:
            data.query_emb, data.bank_emb = embed(encoder, data.query_images), embed(encoder, data.bank_images)
            pairs = view_pair_embeddings(encoder, config, data.query_images[:PAIR_IMAGES], seed=config.seed)
    sections = [
        _training_section(logs),
        _knn_section(logs),
        _map_section(data, data_error, max_points, config.seed),
        _neighbours_section(data, data_error, num_queries, num_neighbours, config.seed),
        _similarity_section(pairs, data_error, str(config.views["recipe"]) if config.views else "none"),
        _health_section(logs, data, pairs, data_error),
        _config_section(saved, read_final_eval(run_dir)),
    ]
    loss = logs.first("train/loss", "train/loss_step")
    progress = f"{max(loss[1].epochs) + 1} epochs, {loss[1].steps[-1] + 1} steps" if loss else "no logs yet"
    source = data.description if data is not None else repr(config.data.path or config.data.name)
    subtitle = (
        f"{config.method['name']} · {config.backbone.name} · data {source} · {progress} · "
        f"{run_dir.resolve()} · written {datetime.now():%Y-%m-%d %H:%M}"
    )
    out = Path(out).expanduser() if out is not None else run_dir / "report.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(render_page(f"contrastkit run report: {config.name}", subtitle, sections), encoding="utf-8")
    os.replace(tmp, out)
    return out


__all__ = ["SECTION_IDS", "write_report"]
