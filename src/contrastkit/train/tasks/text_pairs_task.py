"""Text-pair runs: a sentence encoder fine-tuned on (anchor, positive[, negative]) texts, scored on held-out pairs
before and after training, exported as an encoder file for ``contrastkit embed`` / ``search``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from contrastkit.backbones.dual_encoder import TEXT_ENCODERS, create_text_encoder
from contrastkit.data.labelled import hold_out
from contrastkit.data.text_pairs import TextPairsDataset
from contrastkit.data.tokenized_texts import TextColumns, TokenizedTexts, TokenTable
from contrastkit.eval.retrieval import retrieval_metrics
from contrastkit.methods import Method, create_method
from contrastkit.train.batch_samplers import sharded_sampler
from contrastkit.train.config import RunConfig, config_to_dict
from contrastkit.train.data_workers import data_workers
from contrastkit.train.lit_method import LitMethod
from contrastkit.train.tasks.task import FinalEvaluation, Task, lit_method, register_task


def collate_pairs(batch: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[list[str], list[tuple[str, ...]]]:
    """``(anchors, pairs)``: B anchor strings and B ``(positive[, negative])`` tuples."""
    return [anchor for anchor, _ in batch], [pair for _, pair in batch]


class CollateTokenized:
    """:func:`collate_pairs` with every text's token ids from ``table`` (tokenised once, padded per batch): the
    anchors as :class:`TokenizedTexts`, the pairs as :class:`TextColumns`."""

    def __init__(self, table: TokenTable) -> None:
        self.table = table

    def __call__(self, batch: Sequence[tuple[str, tuple[str, ...]]]) -> tuple[TokenizedTexts, TextColumns]:
        anchors, pairs = collate_pairs(batch)
        columns = [self.table.batch(list(column)) for column in zip(*pairs, strict=True)]
        return self.table.batch(anchors), TextColumns(pairs, columns)


class TextPairsDataModule(pl.LightningDataModule):
    """Text pairs of ``config.data.path`` to train on (times ``data.train_fraction``), sharded across processes, and
    held-out pairs for the before/after retrieval scores: the file ``data.test_path``, or else
    ``final_eval.test_size`` pairs (at most a fifth) held out of ``data.path``."""

    def __init__(self, config: RunConfig) -> None:
        super().__init__()
        if not config.data.path:
            raise ValueError("data.path is required for text pairs: a .jsonl/.csv of anchor, positive[, negative]")
        self.dataset = TextPairsDataset(config.data.path)
        self.batch_size, self.seed = config.data.batch_size, config.seed
        order = np.random.default_rng(config.seed).permutation(len(self.dataset))
        if config.data.test_path:  # a separate held-out file: all of data.path is for training
            self.test_dataset = TextPairsDataset(config.data.test_path)
            self.held_out, rest = np.arange(len(self.test_dataset)), order
        else:
            self.test_dataset = self.dataset
            held, rest = hold_out(order, config.final_eval.test_size)
            self.held_out = np.sort(held)
        self.train_indices = np.sort(rest[: max(1, int(len(rest) * config.data.train_fraction))])
        self.length_grouping, self.num_workers = config.data.length_grouping, config.data.num_workers
        self.table: TokenTable | None = None

    def tokenize_for(self, encoder: torch.nn.Module) -> None:
        """Tokenise every training text once with ``encoder``'s tokenizer and length (when it has them): batches
        then carry token ids (padded per batch) and can be grouped by length."""
        tokenizer, max_length = getattr(encoder, "tokenizer", None), getattr(encoder, "max_length", None)
        if tokenizer is None or max_length is None:
            return
        items = (self.dataset[int(i)] for i in self.train_indices)  # (anchor, (positive[, negative]))
        self.table = TokenTable(tokenizer, max_length, (text for anchor, pair in items for text in (anchor, *pair)))

    def train_dataloader(self) -> DataLoader:
        subset = torch.utils.data.Subset(self.dataset, self.train_indices.tolist())
        lengths = None
        if self.table is not None and self.length_grouping:  # an item's cost: its texts' tokens
            lengths = [sum(self.table.length(t) for t in (a, *pair)) for a, pair in subset]
        sampler = sharded_sampler(
            self.trainer, len(subset), self.batch_size, self.seed, "pairs", lengths, self.length_grouping
        )
        collate = collate_pairs if self.table is None else CollateTokenized(self.table)
        workers = data_workers(self.num_workers, self.trainer)
        return DataLoader(subset, batch_sampler=sampler, collate_fn=collate, num_workers=workers,
                          persistent_workers=workers > 0)  # fmt: skip

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """As it is: the encoder moves the token ids to its device (a generic transfer would rebuild the text lists
        and drop them)."""
        return batch


@torch.no_grad()
def pair_retrieval(encoder: torch.nn.Module, dataset: TextPairsDataset, indices: np.ndarray) -> dict[str, float]:
    """Recall@1/5/10, mAP and MRR of anchor -> its positive among the positives of ``indices``."""
    was_training = encoder.training
    encoder.eval()
    anchors = [dataset[int(i)][0] for i in indices]
    positives = [dataset[int(i)][1][0] for i in indices]

    def embed(texts: list[str]) -> torch.Tensor:
        return torch.cat(
            [F.normalize(encoder(texts[i : i + 128]).float(), dim=-1).cpu() for i in range(0, len(texts), 128)]
        )

    n = len(indices)
    scores = retrieval_metrics(embed(anchors), embed(positives), (torch.arange(n), torch.arange(n)))
    encoder.train(was_training)
    return scores


def build_text_method(config: RunConfig) -> Method:
    """The text encoder of ``backbone.name`` (``minilm`` or ``transformer``) inside the method."""
    if config.backbone.name not in TEXT_ENCODERS:
        raise ValueError(
            f"backbone.name must be a text encoder ({', '.join(TEXT_ENCODERS)}) for method "
            f"{config.method['name']!r}, got {config.backbone.name!r}"
        )
    params = dict(config.method)
    encoder = create_text_encoder(config.backbone.name, max_length=config.backbone.max_length)
    return create_method(params.pop("name"), encoder, **params)


@register_task("text-pairs")
class TextPairsTask(Task):
    """Fine-tunes a text encoder on ``data.path``'s pairs (no views); the final evaluation is anchor -> positive
    retrieval on held-out pairs, before (the initial weights) and after training."""

    def setup(self) -> None:
        self.data = TextPairsDataModule(self.config)
        self.method = build_text_method(self.config)
        self.data.tokenize_for(self.method.backbone)

    def encoder_info(self) -> dict[str, Any]:
        config = self.config
        return {"method": config.method["name"], "config": config_to_dict(config), **self.method.export_module()[1]}

    def lit_module(self, info: dict[str, Any]) -> LitMethod:
        return lit_method(self.config, self.method, None, info, use_labels=True)  # the paired texts

    def evaluate(self, initial: Method) -> FinalEvaluation | None:
        held_out = self.data.held_out
        if len(held_out) < 2:
            return None
        before = pair_retrieval(initial.backbone, self.data.test_dataset, held_out)
        after = pair_retrieval(self.method.backbone, self.data.test_dataset, held_out)
        scores = {"held_out_pairs": len(held_out), "before": before, "after": after}
        from contrastkit.index.mine_negatives import stats_path

        mining = stats_path(self.config.data.path) if self.config.data.path else None
        if mining is not None and mining.is_file():  # pairs from contrastkit mine-negatives: what it did
            scores["mining"] = json.loads(mining.read_text(encoding="utf-8"))
        return FinalEvaluation(scores, format_pair_table(scores))


def format_pair_table(result: dict[str, Any]) -> str:
    """Held-out anchor -> positive retrieval before and after fine-tuning, as a table."""
    header = f"{'encoder':<22} {'R@1':>7} {'R@10':>7} {'MRR':>7}"
    lines = [f"Anchor -> positive retrieval on {result['held_out_pairs']} held-out pairs", header, "-" * len(header)]
    for name in ("before", "after"):
        r = result[name]
        label = "pretrained (before)" if name == "before" else "fine-tuned (after)"
        lines.append(f"{label:<22} {r['recall@1']:>7.4f} {r['recall@10']:>7.4f} {r['mrr']:>7.4f}")
    mining = result.get("mining")
    if mining:
        skipped = ", ".join(f"{n} {why}" for why, n in mining.get("filtered", {}).items()) or "none"
        median = lambda q: f"{q[2]:.3f}" if q else "-"  # noqa: E731
        lines.append(
            f"hard negatives: {mining['rows']} mined rows for {mining['anchors']} anchors (skipped in the window: "
            f"{skipped}; {mining.get('below_window', 0)} anchors took negatives from below it; median similarity "
            f"positive {median(mining.get('positive_scores'))}, negative {median(mining.get('negative_scores'))})"
        )
    return "\n".join(lines)
