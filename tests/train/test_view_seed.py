"""Each process draws its own views, and a batch's views depend only on (seed, rank, epoch, batch)."""

from __future__ import annotations

import itertools

import torch

from contrastkit.train.lit_method import LitMethod, view_seed
from contrastkit.views import SimCLRViews


def test_view_seeds_differ_across_processes_epochs_and_batches_and_repeat_exactly():
    keys = list(itertools.product(range(2), range(4), range(3), range(50)))  # seed, rank, epoch, batch
    seeds = [view_seed(*k) for k in keys]
    assert len(set(seeds)) == len(keys)  # no two (seed, rank, epoch, batch) share views
    assert seeds == [view_seed(*k) for k in keys]  # a resumed run draws the same views
    assert all(0 <= s < 2**63 for s in seeds)


def test_two_processes_give_the_same_images_different_views(monkeypatch):
    images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
    drawn = []

    class Recorder(torch.nn.Module):  # stands in for a method: records the views it is given
        uses_labels = False

        def set_progress(self, progress):
            pass

        def forward(self, views, labels=None):
            drawn.append(views[0].clone())
            raise StopIteration

    for rank in (0, 1, 0):
        module = LitMethod(Recorder(), SimCLRViews(28, 1), optim=None, seed=7)
        monkeypatch.setattr(LitMethod, "global_rank", property(lambda self, r=rank: r))
        monkeypatch.setattr(LitMethod, "current_epoch", property(lambda self: 0))
        monkeypatch.setattr(LitMethod, "_progress", lambda self, i: None)
        try:
            module.training_step((images, torch.zeros(8, dtype=torch.long)), batch_idx=3)
        except StopIteration:
            pass
    assert not torch.equal(drawn[0], drawn[1])  # rank 1 does not repeat rank 0's crops
    assert torch.equal(drawn[0], drawn[2])  # the same process, epoch and batch: the same views


def test_captions_are_drawn_per_process_and_per_batch_like_the_views(monkeypatch):
    from contrastkit.data.class_captions import ClassCaptions

    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 3, (64,), generator=torch.Generator().manual_seed(0))
    drawn = []

    class Recorder(torch.nn.Module):
        def set_progress(self, progress):
            pass

        def forward(self, views, labels=None):
            drawn.append(labels)
            raise StopIteration

    templates = ("a photo of a {}.", "a picture of one {}.", "a {}, close up.")
    for rank, batch in ((0, 3), (1, 3), (0, 3), (0, 4)):
        captions = ClassCaptions(["cat", "dog", "cow"], templates, seed=7)  # a fresh process each time
        module = LitMethod(Recorder(), SimCLRViews(28, 1), optim=None, use_labels=True, seed=7, captions=captions)
        monkeypatch.setattr(LitMethod, "global_rank", property(lambda self, r=rank: r))
        monkeypatch.setattr(LitMethod, "current_epoch", property(lambda self: 0))
        monkeypatch.setattr(LitMethod, "_progress", lambda self, i: None)
        try:
            module.training_step((images, labels), batch_idx=batch)
        except StopIteration:
            pass
    names = ["cat", "dog", "cow"]
    assert all(c in [t.format(names[y]) for t in templates] for c, y in zip(drawn[0], labels.tolist(), strict=True))
    assert drawn[0] != drawn[1]  # rank 1 draws its own templates
    assert drawn[0] == drawn[2]  # a resumed process redraws the same captions for the same batch
    assert drawn[0] != drawn[3]  # the next batch draws anew
