"""After training: kNN and linear-probe accuracy of the trained encoder next to two floors, the same encoder at
its random initialisation and the raw pixels, on held-out labelled images."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from contrastkit.data.labelled import Labelled, hold_out, take
from contrastkit.eval.embed_images import embed_images
from contrastkit.eval.evaluate_encoder import knn_and_probe
from contrastkit.methods import Method
from contrastkit.train.config import RunConfig
from contrastkit.train.data_module import RunDataModule
from contrastkit.views import MultiViews


def held_out_split(config: RunConfig, data: RunDataModule) -> tuple[Labelled, Labelled]:
    """``(train, test)`` labelled images for the final scores: the kNN bank (its first ``final_eval.train_size``
    images fit the probes) and the queries, from the test split, else held out of the training images."""
    rng = np.random.default_rng(config.seed + 2)
    size_test = config.final_eval.test_size
    size_train = max(config.final_eval.train_size, config.final_eval.knn_bank_size or 0)  # bank >= probe set
    if data.test_set is not None:
        train = take(data.train_set, rng.permutation(data.train_indices)[:size_train])
        test = take(data.test_set, rng.permutation(len(data.test_set))[:size_test])
    else:  # path data: a held-out part of the labelled training images (the encoder saw them, labels never)
        held, rest = hold_out(rng.permutation(data.train_indices), size_test)
        test, train = take(data.train_set, held), take(data.train_set, rest[:size_train])
    return train, test


def start_name(config: RunConfig) -> str:
    """The final table's name for the encoder training started from: what adaptation is measured against."""
    return "pretrained start" if config.backbone.pretrained else "random init"


def final_evaluation(
    config: RunConfig,
    data: RunDataModule,
    method: Method,
    initial: Method,
    views: MultiViews,
    train: Labelled,
    test: Labelled,
) -> dict[str, Any]:
    """Scores of the trained encoder, the encoder it started from (random init, or ``backbone.pretrained``) and raw
    pixels (kNN top-1/top-5, linear probe).

    ``initial`` is the method as training began (a snapshot of its initial weights); ``train`` / ``test`` come from
    :func:`held_out_split`.
    """
    spec = views.specs[0]
    device = next(method.parameters()).device
    initial = initial.backbone.to(device)
    method.eval()
    initial.eval()

    probe_size = min(config.final_eval.train_size, len(train.labels))  # the probes fit the bank's first images

    def pixels(images: torch.Tensor) -> torch.Tensor:
        return embed_images(lambda x: x.flatten(1), images, spec.mean, spec.std, spec.size)  # (N, C*S*S)

    encoders = {
        f"{config.method['name']} (trained)": lambda imgs: embed_images(
            method.embed, imgs, spec.mean, spec.std, spec.size, device
        ),
        start_name(config): lambda imgs: embed_images(initial, imgs, spec.mean, spec.std, spec.size, device),
        "raw pixels": pixels,
    }
    # with data.classes the probes are trained on the seen classes: scored on them too (not capped at seen / all)
    scored = _only_classes(test, data.classes, config.data.classes) if config.data.classes else test
    rows = []
    for name, features in encoders.items():
        f_train, f_test = features(train.images), features(scored.images)  # (N, D), (M, D)
        monitor = config.monitor
        scores = knn_and_probe(
            f_train,
            train.labels,
            f_test,
            scored.labels,
            monitor.knn_k,
            monitor.knn_temperature,
            probe_size,
            config.seed,
        )
        rows.append({"encoder": name, **scores})
    result = {
        "train_images": probe_size,
        "knn_bank_images": len(train.labels),
        "test_images": len(scored.labels),
        "k": config.monitor.knn_k,
    }
    if config.data.classes:
        result["classes"] = list(config.data.classes)
    return {**result, "rows": rows}


def _only_classes(images: Labelled, classes: list[str], names: list[str]) -> Labelled:
    """The images of the classes ``names`` (of ``classes``)."""
    keep = torch.isin(images.labels, torch.tensor([classes.index(name) for name in names]))
    return Labelled(images.images[keep], images.labels[keep])


def image_text_scores(
    config: RunConfig,
    data: RunDataModule,
    method: Method,
    initial: Method,
    spec: Any,
    device: torch.device,
    test: Labelled | None = None,
) -> dict[str, Any]:
    """For image-text methods: zero-shot accuracy on labelled held-out images (seen and, with ``data.classes``,
    unseen classes separately, each next to chance and the random-init model), and image<->text retrieval on
    held-out image-caption pairs (those outside ``data.train_fraction``)."""
    from contrastkit.data.class_captions import DEFAULT_TEMPLATES, class_wordings
    from contrastkit.eval.zero_shot import image_text_retrieval, zero_shot

    out: dict[str, Any] = {}
    models = {
        f"{config.method['name']} (trained)": method.model.eval(),
        start_name(config): initial.model.to(device).eval(),
    }
    templates = config.data.caption_templates or list(DEFAULT_TEMPLATES)
    if test is not None and data.classes:
        seen = list(config.data.classes) or list(data.classes)
        groups = {"seen classes": seen}
        unseen = [c for c in data.classes if c not in seen]
        if len(unseen) >= 2:
            groups["unseen classes"] = unseen
        if unseen:
            groups["all classes"] = list(data.classes)
        rows = []
        for group, names in groups.items():
            ids = torch.tensor([data.classes.index(n) for n in names])
            keep = torch.isin(test.labels, ids)
            remap = torch.full((len(data.classes),), -1, dtype=torch.long)
            remap[ids] = torch.arange(len(ids))
            words = class_wordings(names, {n: w for n, w in data.class_wording.items() if n in names})
            for name, model in models.items():
                r = zero_shot(
                    model, test.images[keep], words, templates, remap[test.labels[keep]], spec.mean, spec.std, spec.size
                )
                rows.append(
                    {
                        "classes": group,
                        "encoder": name,
                        "num_classes": r.num_classes,
                        "top1": r.top1,
                        "top5": r.top5,
                        "chance": r.chance,
                        "images": int(keep.sum()),
                    }
                )
        out["zero_shot"] = rows
    pairs = held_out_pairs(config, data)
    if pairs is not None:
        images, captions = pairs
        rows = []
        for name, model in models.items():
            with torch.no_grad():
                img = embed_images(model.encode_image, images, spec.mean, spec.std, spec.size, device)  # (N, E)
                txt = torch.cat([model.encode_text(captions[i : i + 256]).cpu() for i in range(0, len(captions), 256)])
            rows.append({"encoder": name, "pairs": len(captions), **image_text_retrieval(img, txt)})
        out["retrieval"] = rows
    return out


def held_out_pairs(config: RunConfig, data: RunDataModule) -> tuple[torch.Tensor, list[str]] | None:
    """Image-caption pairs of a caption listing that training did not use (``data.train_fraction < 1``)."""
    if not data.has_captions or data.captions is not None:
        return None
    unused = np.setdiff1d(np.arange(len(data.train_set)), data.train_indices)
    items = [data.train_set[int(i)] for i in unused[: config.final_eval.test_size]]
    items = [item for item in items if isinstance(item, tuple)]
    if len(items) < 2:
        return None
    return torch.stack([im for im, _ in items]), [caption for _, caption in items]


def format_table(result: dict[str, Any]) -> str:
    """The final evaluation as plain-text tables."""
    parts = [_format_probes(result)] if result.get("rows") else []
    if result.get("zero_shot"):
        header = f"{'classes':<16} {'encoder':<24} {'n':>3} {'top-1':>7} {'top-5':>7} {'chance':>7}"
        lines = ["Zero-shot classification (class names in caption templates, no labels used)", header]
        lines.append("-" * len(header))
        for r in result["zero_shot"]:
            lines.append(
                f"{r['classes']:<16} {r['encoder']:<24} {r['num_classes']:>3} {r['top1']:>7.4f} {r['top5']:>7.4f} "
                f"{r['chance']:>7.4f}"
            )
        parts.append("\n".join(lines))
    if result.get("retrieval"):
        header = f"{'encoder':<24} {'pairs':>6} {'i2t R@1':>8} {'i2t R@10':>9} {'t2i R@1':>8} {'t2i R@10':>9}"
        lines = ["Image-text retrieval on held-out pairs", header, "-" * len(header)]
        for r in result["retrieval"]:
            i2t, t2i = r["image_to_text"], r["text_to_image"]
            lines.append(
                f"{r['encoder']:<24} {r['pairs']:>6} {i2t['recall@1']:>8.4f} {i2t['recall@10']:>9.4f} "
                f"{t2i['recall@1']:>8.4f} {t2i['recall@10']:>9.4f}"
            )
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def _format_probes(result: dict[str, Any]) -> str:
    header = f"{'encoder':<24} {'dim':>5} {'kNN top-1':>10} {'kNN top-5':>10} {'linear probe':>13}"
    where = f" of the {len(result['classes'])} classes trained on" if result.get("classes") else ""
    bank = result.get("knn_bank_images", result["train_images"])
    items = result.get("items", "images")
    lines = [
        f"Evaluation on {result['test_images']} held-out {items}{where} (probes fitted on {result['train_images']} "
        f"training {items}; kNN k={result['k']}, cosine, weighted, over {bank} training {items})",
        header,
        "-" * len(header),
    ]
    for row in result["rows"]:
        lines.append(
            f"{row['encoder']:<24} {row['dim']:>5} {row['knn_top1']:>10.4f} {row['knn_top5']:>10.4f} "
            f"{row['linear_probe']:>13.4f}"
        )
    return "\n".join(lines)
