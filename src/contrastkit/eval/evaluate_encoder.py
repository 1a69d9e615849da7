"""One table for one encoder: kNN, linear probe, retrieval and health, next to random init and raw pixels."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from contrastkit.eval.embed_images import embed_images
from contrastkit.eval.health import alignment, rankme, uniformity
from contrastkit.eval.knn import knn_accuracy
from contrastkit.eval.linear_probe import linear_probe
from contrastkit.eval.retrieval import retrieval_metrics

COLUMNS = ("knn_top1", "knn_top5", "linear_probe", "recall@1", "map", "alignment", "uniformity", "rankme")


def knn_and_probe(
    f_train: Tensor,
    y_train: Tensor,
    f_test: Tensor,
    y_test: Tensor,
    k: int = 200,
    temperature: float = 0.1,
    probe_size: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The two standard scores of frozen features: weighted cosine kNN over the whole bank ``f_train`` ``(N, D)``
    and a linear probe fitted on its first ``probe_size`` rows (default: all), both on the queries ``f_test``.

    Returns:
        ``{"dim", "knn_top1", "knn_top5", "linear_probe", "linear_probe_weight_decay"}``.
    """
    n = len(y_train) if probe_size is None else min(probe_size, len(y_train))
    knn = knn_accuracy(f_train, y_train, f_test, y_test, k=min(k, len(y_train)), temperature=temperature)
    probe = linear_probe(f_train[:n], y_train[:n], f_test, y_test, seed=seed)
    return {
        "dim": int(f_train.shape[1]),
        "knn_top1": float(knn.top1),
        "knn_top5": float(knn.top5),
        "linear_probe": float(probe.accuracy),
        "linear_probe_weight_decay": float(probe.weight_decay),
    }


def _scores(features, train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor], views, k: int, seed: int) -> dict:
    f_train, f_test = features(train[0]), features(test[0])  # (N, D), (M, D)
    row = knn_and_probe(f_train, train[1], f_test, test[1], k=k, seed=seed)
    retrieval = retrieval_metrics(f_test, f_train, (test[1], train[1]), ks=(1,))
    row.update({"recall@1": retrieval["recall@1"], "map": retrieval["map"], "rankme": rankme(f_test)})
    row["uniformity"] = uniformity(f_test)
    if views is not None:  # alignment: two augmented views of each test image (Wang & Isola 2020)
        generator = torch.Generator().manual_seed(seed)
        a, b = views(test[0][:2000], generator)
        row["alignment"] = alignment(a, b)
    return row


def evaluate_encoder(
    encoder: nn.Module,
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    random_init: nn.Module | None = None,
    k: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """Scores of ``encoder`` (from :func:`contrastkit.load_encoder`), ``random_init`` and raw pixels.

    Args:
        encoder: an encoder with ``encoder_info`` (input size, normalisation).
        train: ``(uint8 images (N, C, H, W), labels (N,))``: kNN bank, probe training set and retrieval gallery.
        test: ``(uint8 images (M, C, H, W), labels (M,))``: queries.
        random_init: the same architecture untrained (a floor); None to leave the row out.
        k: kNN neighbours; seed: probe split and views.

    Returns:
        ``{"rows": [{"encoder": name, "dim": D, "knn_top1", "knn_top5", "linear_probe", "recall@1", "map",
        "alignment", "uniformity", "rankme"}, ...], "train_images": N, "test_images": M}``. Retrieval ranks the
        training images for each test image (same class = relevant); alignment uses two SimCLR views.
    """
    from contrastkit.views import SimCLRViews

    info = encoder.encoder_info
    size, mean, std = int(info["input_size"]), tuple(info["mean"]), tuple(info["std"])
    channels = int(info["in_chans"])
    device = next(encoder.parameters()).device
    simclr = SimCLRViews(size, channels, mean=mean, std=std)

    def model_rows(name: str, model: nn.Module) -> dict:
        model.eval()

        def features(images: Tensor) -> Tensor:
            return embed_images(model, images, mean, std, size, device)

        def views(images: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
            with torch.no_grad():
                a, b = simclr.batch(images, generator)
                return model(a.to(device)).float().cpu(), model(b.to(device)).float().cpu()

        return {"encoder": name, **_scores(features, train, test, views, k, seed)}

    architecture = info.get("backbone") or info.get("source", {}).get("name", "encoder")
    rows = [model_rows(f"{info.get('method', 'trained')} ({architecture})", encoder)]
    if random_init is not None:
        rows.append(model_rows("random init", random_init.to(device)))

    def pixels(images: Tensor) -> Tensor:
        return embed_images(lambda x: x.flatten(1), images, mean, std, size)

    rows.append({"encoder": "raw pixels", **_scores(pixels, train, test, None, k, seed)})
    return {"rows": rows, "train_images": len(train[1]), "test_images": len(test[1]), "k": k}


def format_report(result: dict[str, Any]) -> str:
    """The evaluation as a plain-text table (higher is better except alignment and uniformity)."""
    names = {
        "knn_top1": "kNN@1",
        "knn_top5": "kNN@5",
        "linear_probe": "probe",
        "recall@1": "R@1",
        "map": "mAP",
        "alignment": "align",
        "uniformity": "unif",
        "rankme": "RankMe",
    }
    header = f"{'encoder':<26}{'dim':>5}" + "".join(f"{names[c]:>8}" for c in COLUMNS)
    lines = [
        f"{result['test_images']} test images against {result['train_images']} training images (kNN k={result['k']}; "
        "align/unif: lower is better)",
        header,
        "-" * len(header),
    ]
    for row in result["rows"]:
        cells = "".join(f"{row[c]:>8.3f}" if c in row else f"{'-':>8}" for c in COLUMNS if c != "rankme")
        lines.append(f"{row['encoder']:<26}{row['dim']:>5}{cells}{row['rankme']:>8.1f}")
    return "\n".join(lines)
