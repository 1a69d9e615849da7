"""Few-shot text classification: a sentence encoder fine-tuned contrastively on a few labelled texts, then a
logistic-regression head (SetFit's recipe, Tunstall et al. 2022, arXiv 2209.11055, with contrastkit's losses), next
to the frozen encoder's probe and TF-IDF + logistic regression trained on the same labels."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from contrastkit.backbones.embed_by_length import encode_by_length
from contrastkit.eval.linear_probe import fit_linear_probe, fit_logistic_regression
from contrastkit.finetuning.classifier import Classifier, TextTower
from contrastkit.finetuning.labelled_texts import LabelledTexts
from contrastkit.finetuning.text_finetune_config import TextFinetuneConfig
from contrastkit.losses import MultipleNegativesRankingLoss, SupConLoss
from contrastkit.optim.parameter_groups import parameter_groups

EMBED_BATCH = 128  # texts per forward pass when embedding without gradients
LP_FT_HEAD_LR_RATIO = 10.0  # LP-FT: the head's learning rate over the encoder's


@dataclass
class TextSplit:
    """The labelled texts a run trains on and the texts it is scored on, as class ids."""

    train_texts: list[str]
    train_labels: np.ndarray  # (n,) class ids
    test_texts: list[str]
    test_labels: np.ndarray  # (m,) class ids
    classes: list[str]
    source: str  # where the test texts came from


def _tokens(tower: TextTower, texts: Sequence[str]):
    """``texts`` pre-tokenised with the tower's tokenizer when it has one (each distinct text once), else as is."""
    model = tower.text_model
    if not hasattr(model, "tokenizer"):
        return None
    from contrastkit.data.tokenized_texts import TokenTable

    return TokenTable(model.tokenizer, int(model.max_length), texts)


@torch.no_grad()
def embed_texts(tower: nn.Module, texts: Sequence[str], batch_size: int = EMBED_BATCH) -> Tensor:
    """Normalised embeddings ``(N, E)`` of ``texts`` (eval mode, batches sorted by length: less padding)."""
    was_training = tower.training
    tower.eval()
    out = torch.empty(len(texts), int(tower.feature_dim))  # (N, E)
    for rows, z in encode_by_length(tower, texts, batch_size):
        out[rows] = z.float().cpu()  # (b, E)
    tower.train(was_training)
    return out


def supcon_batches(labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """One epoch of batches in which every row has another of its class: each class's rows shuffled and cut into
    pairs (a class's odd row joins its last pair), the pairs shuffled and packed into batches of about
    ``batch_size``; every row once."""
    groups: list[np.ndarray] = []
    for c in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == c))
        cuts = [rows[i : i + 2] for i in range(0, len(rows) - len(rows) % 2, 2)] or [rows]
        if len(rows) % 2 and len(rows) > 1:
            cuts[-1] = np.append(cuts[-1], rows[-1])
        groups.extend(cuts)
    batch: list[int] = []
    for g in rng.permutation(len(groups)):
        batch.extend(groups[g].tolist())
        if len(batch) >= batch_size:
            yield np.array(batch)
            batch = []
    if len(batch) >= 2:
        yield np.array(batch)


def triplet_batches(
    labels: np.ndarray, batch_size: int, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One epoch of (anchor, positive, negative) row triplets: every row an anchor once, a positive of its class
    (another row) and a negative of another class; within a batch the anchors' classes are distinct where there are
    enough classes, so no in-batch candidate is a false negative."""
    by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
    queue = {c: list(rng.permutation(rows)) for c, rows in by_class.items()}
    classes = list(by_class)
    while any(queue.values()):
        live = [c for c in classes if queue[c]]
        # the fullest classes first: anchors of distinct classes, as many as the batch holds
        picked = sorted(live, key=lambda c: (-len(queue[c]), rng.random()))[:batch_size]
        anchors = np.array([queue[c].pop() for c in picked])
        positives = np.array([rng.choice(by_class[c][by_class[c] != a]) for c, a in zip(picked, anchors, strict=True)])
        others = [rng.choice([d for d in classes if d != c]) for c in picked]
        negatives = np.array([rng.choice(by_class[d]) for d in others])
        yield anchors, positives, negatives


def contrastive_finetune(
    tower: TextTower, texts: list[str], labels: np.ndarray, config: TextFinetuneConfig
) -> list[float]:
    """Stage 1: train ``tower`` in place on the labelled texts with ``config.objective``; returns the step losses.

    AdamW (no decay on biases and norm layers), linear warm-up then linear decay to zero, as sentence-transformers
    trains; batches pre-tokenised once.
    """
    rng = np.random.default_rng(config.seed)
    torch.manual_seed(config.seed)
    single = len(np.unique(labels)) == 1
    if single or any((labels == c).sum() < 2 for c in np.unique(labels)):
        raise ValueError("contrastive fine-tuning needs at least 2 classes and 2 labelled texts in each")
    if config.objective == "supcon":
        criterion: nn.Module = SupConLoss(temperature=config.temperature)
        steps_per_epoch = len(list(supcon_batches(labels, config.batch_size, np.random.default_rng(0))))
    else:
        criterion = MultipleNegativesRankingLoss(temperature=config.temperature)
        steps_per_epoch = len(list(triplet_batches(labels, config.batch_size, np.random.default_rng(0))))
    total = max(1, steps_per_epoch * config.epochs)
    optimizer, schedule = _adamw_linear(parameter_groups(tower, config.weight_decay), config, total)
    as_input = _batcher(tower, texts)

    labels_t = torch.as_tensor(labels)
    losses: list[float] = []
    tower.train()
    for _ in range(config.epochs):
        if config.objective == "supcon":
            for rows in supcon_batches(labels, config.batch_size, rng):
                loss = criterion(tower(as_input(rows)), labels_t[rows])  # (B, E) against same-class rows
                losses.append(_step(loss, optimizer, schedule))
        else:
            for a, p, n in triplet_batches(labels, config.batch_size, rng):
                z = tower(as_input(np.concatenate([a, p, n])))  # (3B, E)
                loss = criterion(*z.split(len(a)))  # anchors against every positive and negative of the batch
                losses.append(_step(loss, optimizer, schedule))
    tower.eval()
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError("the contrastive fine-tuning loss became NaN or infinite: lower --lr")
    return losses


def _batcher(tower: TextTower, texts: list[str]):
    """A function from row indices to the tower's input for those texts (pre-tokenised once when it can be)."""
    table = _tokens(tower, texts)

    def as_input(rows: np.ndarray):
        chosen = [texts[i] for i in rows]
        return table.batch(chosen) if table is not None else chosen

    return as_input


def _adamw_linear(groups: list[dict], config: TextFinetuneConfig, total: int):
    """Fused AdamW over ``groups`` (a group's own ``lr`` wins over ``config.lr``) and its schedule: linear warm-up
    over ``config.warmup_fraction`` of ``total`` steps, then linear decay to zero, as sentence-transformers trains."""
    warmup = int(config.warmup_fraction * total)
    optimizer = torch.optim.AdamW(groups, lr=config.lr, fused=True)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )
    return optimizer, schedule


def lp_ft(
    tower: TextTower, texts: list[str], labels: np.ndarray, k: int, config: TextFinetuneConfig
) -> tuple[Classifier, list[float]]:
    """Stage 2 as LP-FT (Kumar et al. 2022, "Fine-Tuning can Distort Pretrained Features and Underperform
    Out-of-Distribution", arXiv 2202.10054): a linear probe first, then the encoder (in place) and the head trained
    together with cross-entropy for ``config.head_epochs`` epochs, the encoder at ``config.lr`` and the head at
    ``LP_FT_HEAD_LR_RATIO`` times it. The probe is scikit-learn's default logistic regression (``C = 1``, SetFit's
    head) on the embeddings as they are: a head of moderate weights, whose loss still has a gradient on texts it
    already classifies. (:func:`probe_classifier`'s, with its L2 chosen on a held-out part and the features
    standardised, fits a few labels almost exactly with weights in the 1e5s: a step of the encoder then swings the
    logits far.) Returns the classifier and the step losses."""
    rng = np.random.default_rng(config.seed + 1)
    torch.manual_seed(config.seed + 1)
    labels_t = torch.as_tensor(labels)
    w = fit_logistic_regression(embed_texts(tower, texts), labels_t, k, weight_decay=1.0 / len(texts))  # (E + 1, k)
    classifier = Classifier(tower, k)
    classifier.head.weight.data.copy_(w[:-1].t())
    classifier.head.bias.data.copy_(w[-1])
    head_ids = {id(p) for p in classifier.head.parameters()}
    groups = parameter_groups(tower, config.weight_decay, skip=head_ids)
    head_lr = config.lr * LP_FT_HEAD_LR_RATIO
    groups.append({"params": list(classifier.head.parameters()), "weight_decay": 0.0, "lr": head_lr})
    steps_per_epoch = math.ceil(len(texts) / config.batch_size)
    optimizer, schedule = _adamw_linear(groups, config, max(1, steps_per_epoch * config.head_epochs))
    as_input = _batcher(tower, texts)
    losses: list[float] = []
    classifier.train()
    for _ in range(config.head_epochs):
        for rows in np.array_split(rng.permutation(len(texts)), steps_per_epoch):
            logits = classifier.head(tower(as_input(rows)))  # (B, k)
            losses.append(_step(nn.functional.cross_entropy(logits.float(), labels_t[rows]), optimizer, schedule))
    classifier.eval()
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError("the LP-FT loss became NaN or infinite: lower --lr")
    return classifier, losses


def _step(loss: Tensor, optimizer: torch.optim.Optimizer, schedule) -> float:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    schedule.step()
    return float(loss.detach())


def probe_classifier(tower: TextTower, texts: list[str], labels: np.ndarray, k: int, seed: int) -> Classifier:
    """Stage 2: a logistic-regression head (L2 chosen on a held-out part) on the tower's embeddings, as a
    :class:`Classifier` of the tower."""
    probe = fit_linear_probe(embed_texts(tower, texts), torch.as_tensor(labels), k, seed=seed)
    classifier = Classifier(tower, k)
    classifier.head.weight.data.copy_(probe.weight)
    classifier.head.bias.data.copy_(probe.bias)
    return classifier.eval()


@torch.no_grad()
def predict_texts(classifier: Classifier, texts: Sequence[str], batch_size: int = EMBED_BATCH) -> Tensor:
    """Class probabilities ``(N, C)`` of ``texts``."""
    z = embed_texts(classifier.encoder, texts, batch_size)  # (N, E)
    return (z @ classifier.head.weight.t() + classifier.head.bias).softmax(dim=1)


def tfidf_accuracy(split: TextSplit, seed: int) -> float:
    """Test accuracy of TF-IDF (word uni- and bigrams, sublinear tf) + logistic regression trained on the same
    labelled texts: the classifier without any pretraining."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x = vectorizer.fit_transform(split.train_texts)
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=seed).fit(x, split.train_labels)
    return float((model.predict(vectorizer.transform(split.test_texts)) == split.test_labels).mean())


def run_text_finetune(
    tower: TextTower, split: TextSplit, config: TextFinetuneConfig
) -> tuple[dict[str, float | None], Classifier, dict[str, float], list[float]]:
    """The three rows on one split: probe on the frozen encoder, fine-tuned (stage 1 + 2), TF-IDF; returns
    (accuracies, the exported classifier, seconds per part, the training losses: stage 1's steps, then LP-FT's)."""
    k = len(split.classes)
    seconds: dict[str, float] = {}
    test_labels = torch.as_tensor(split.test_labels)

    def accuracy(classifier: Classifier) -> float:
        return float((predict_texts(classifier, split.test_texts).argmax(1) == test_labels).float().mean())

    start = time.perf_counter()
    probe = probe_classifier(tower, split.train_texts, split.train_labels, k, config.seed)
    rows: dict[str, float | None] = {"linear_probe": accuracy(probe), "finetuned": None, "tfidf": None}
    seconds["linear probe"] = time.perf_counter() - start
    final, losses = probe, []
    if not config.freeze:
        start = time.perf_counter()
        tuned = copy.deepcopy(tower)
        losses = contrastive_finetune(tuned, split.train_texts, split.train_labels, config)
        if config.head == "lp-ft":
            final, head_losses = lp_ft(tuned, split.train_texts, split.train_labels, k, config)
            losses += head_losses
        else:
            final = probe_classifier(tuned, split.train_texts, split.train_labels, k, config.seed)
        rows["finetuned"] = accuracy(final)
        seconds["fine-tuning"] = time.perf_counter() - start
    if config.tfidf:
        start = time.perf_counter()
        rows["tfidf"] = tfidf_accuracy(split, config.seed)
        seconds["tf-idf"] = time.perf_counter() - start
    return rows, final, seconds, losses


def text_split(
    train: LabelledTexts, test: LabelledTexts | None, config: TextFinetuneConfig
) -> tuple[TextSplit, np.ndarray]:
    """The run's split: ``test`` when given (its labels must be classes of ``train``), else a seeded
    ``config.test_fraction`` of each class of ``train``; then ``config.labels_per_class`` drawn per class from the
    training rows when set. Returns the split and the rows of ``train`` used for training."""
    from contrastkit.finetuning.labelled_texts import check_class_sizes, held_out_split

    classes = train.classes()
    ids = train.ids(classes)
    if test is None:
        check_class_sizes(train, 3, "each class needs 2 texts to train on (a pair) and 1 to test on, or give --test")
        train_rows, test_rows = held_out_split(ids, config.test_fraction, config.seed)
        test_texts, test_ids = [train.texts[i] for i in test_rows], ids[test_rows]
        source = f"{train.source}: {len(test_rows)} texts held out for testing (seed {config.seed})"
    else:
        check_class_sizes(train, 2, "contrastive fine-tuning needs at least 2 texts of each class (a pair)")
        train_rows, test_texts, test_ids = np.arange(len(train)), test.texts, test.ids(classes)
        source = f"test file {test.source}"
    if config.labels_per_class is not None:
        rng = np.random.default_rng(config.seed)
        drawn = []
        for c in range(len(classes)):
            rows = train_rows[ids[train_rows] == c]
            if len(rows) < config.labels_per_class:
                raise ValueError(
                    f"{train.source}: class {classes[c]!r} has {len(rows)} training texts, fewer than "
                    f"--labels-per-class {config.labels_per_class}"
                )
            drawn.extend(rng.choice(rows, config.labels_per_class, replace=False))
        train_rows = np.sort(np.array(drawn, dtype=np.int64))
    split = TextSplit([train.texts[i] for i in train_rows], ids[train_rows], test_texts, test_ids, classes, source)
    return split, train_rows


__all__ = [
    "TextSplit", "contrastive_finetune", "embed_texts", "lp_ft", "predict_texts", "run_text_finetune", "text_split",
]  # fmt: skip
