"""After training: kNN and linear-probe accuracy of the trained encoder next to two floors, the same encoder at
its random initialisation and the raw pixels, on held-out labelled images."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from contrastkit.eval import knn_accuracy, linear_probe
from contrastkit.eval.embed_images import embed_images
from contrastkit.methods import Method
from contrastkit.train.config import RunConfig
from contrastkit.train.data_module import Labelled, RunDataModule, take
from contrastkit.views import MultiViews


def _split(config: RunConfig, data: RunDataModule) -> tuple[Labelled, Labelled]:
    rng = np.random.default_rng(config.seed + 2)
    size_train, size_test = config.final_eval.train_size, config.final_eval.test_size
    if data.test_set is not None:
        train = take(data.train_set, rng.permutation(data.train_indices)[:size_train])
        test = take(data.test_set, rng.permutation(len(data.test_set))[:size_test])
    else:  # path data: a held-out part of the labelled training images (the encoder saw them, labels never)
        order = rng.permutation(data.train_indices)
        cut = min(size_test, len(order) // 5)
        test, train = take(data.train_set, order[:cut]), take(data.train_set, order[cut : cut + size_train])
    return train, test


def final_evaluation(config: RunConfig, data: RunDataModule, method: Method, views: MultiViews) -> dict[str, Any]:
    """Scores of the trained encoder, the random-init encoder and raw pixels (kNN top-1/top-5, linear probe).

    The random-init encoder is the run's own starting point: rebuilt with the run's seed, as training began.
    """
    from contrastkit.train.fit import build_method  # fit imports this module lazily

    spec = views.specs[0]
    train, test = _split(config, data)
    torch.manual_seed(config.seed)
    initial = build_method(config, in_chans=spec.channels).backbone
    device = next(method.parameters()).device
    initial.to(device)
    method.eval()
    initial.eval()

    def pixels(images: torch.Tensor) -> torch.Tensor:
        return embed_images(lambda x: x.flatten(1), images, spec.mean, spec.std, spec.size)  # (N, C*S*S)

    encoders = {
        f"{config.method['name']} (trained)": lambda imgs: embed_images(
            method.embed, imgs, spec.mean, spec.std, spec.size, device
        ),
        "random init": lambda imgs: embed_images(initial, imgs, spec.mean, spec.std, spec.size, device),
        "raw pixels": pixels,
    }
    rows = []
    for name, features in encoders.items():
        f_train, f_test = features(train.images), features(test.images)  # (N, D), (M, D)
        knn = knn_accuracy(
            f_train,
            train.labels,
            f_test,
            test.labels,
            k=config.monitor.knn_k,
            temperature=config.monitor.knn_temperature,
        )
        probe = linear_probe(f_train, train.labels, f_test, test.labels, seed=config.seed)
        rows.append(
            {
                "encoder": name,
                "dim": int(f_train.shape[1]),
                "knn_top1": float(knn.top1),
                "knn_top5": float(knn.top5),
                "linear_probe": float(probe.accuracy),
                "linear_probe_weight_decay": float(probe.weight_decay),
            }
        )
    return {"train_images": len(train.labels), "test_images": len(test.labels), "k": config.monitor.knn_k, "rows": rows}


def format_table(result: dict[str, Any]) -> str:
    """The final evaluation as a plain-text table."""
    header = f"{'encoder':<24} {'dim':>5} {'kNN top-1':>10} {'kNN top-5':>10} {'linear probe':>13}"
    lines = [
        f"Evaluation on {result['test_images']} held-out images (probes fitted on {result['train_images']}; "
        f"kNN k={result['k']}, cosine, weighted)",
        header,
        "-" * len(header),
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['encoder']:<24} {row['dim']:>5} {row['knn_top1']:>10.4f} {row['knn_top5']:>10.4f} "
            f"{row['linear_probe']:>13.4f}"
        )
    return "\n".join(lines)
