"""MultiViewDataset, collate_views and reproducible DataLoader workers."""

import pickle
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset

from contrastkit.data.multi_view_dataset import (
    IterableMultiViewDataset,
    MultiViewDataset,
    collate_views,
    match_channels,
    reproducible_loader_kwargs,
    seed_worker,
)
from contrastkit.data.skip_report import Skipped, SkipReport


class ListDataset(Dataset):
    def __init__(self, items, classes=None):
        self.items, self.classes = items, classes

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.items[index]


class Stream(IterableDataset):
    def __init__(self, items):
        self.items = items

    def __iter__(self):
        yield from self.items


class RandomViews:
    """Two random 8x8 crops with random flips and noise: torch, numpy and random RNGs all used."""

    channels = 3

    def __call__(self, image):  # uint8 (C, H, W) -> 2 x float (C, 8, 8)
        views = []
        for _ in range(2):
            top = int(torch.randint(0, image.shape[1] - 7, ()))
            left = random.randrange(image.shape[2] - 7)
            view = image[:, top : top + 8, left : left + 8].float()
            if np.random.rand() < 0.5:  # noqa: NPY002 (checks that seed_worker seeds numpy's global RNG)
                view = view.flip(-1)
            views.append(view + torch.rand(()))
        return views


def image(value, channels=3, h=12, w=12):
    return torch.full((channels, h, w), value, dtype=torch.uint8)


def test_labels_indices_captions_and_skipped_pass_through():
    skipped = Skipped("x.png", "empty file")
    unlabelled = MultiViewDataset(ListDataset([(image(1), 4), (image(2), -1), skipped]), RandomViews())
    assert len(unlabelled) == 3 and unlabelled[0][1] == 4 and unlabelled[1][1] == 1 and unlabelled[2] is skipped
    views, _ = unlabelled[0]
    assert len(views) == 2 and views[0].shape == (3, 8, 8)
    labelled = MultiViewDataset(ListDataset([(image(1), -1), (image(2), 0)], classes=["a"]), RandomViews())
    assert [labelled[i][1] for i in range(2)] == [-1, 0]  # a labelled set keeps -1 for its strays
    assert MultiViewDataset(ListDataset([(image(1), 5)]), RandomViews(), target="index")[0][1] == 0
    assert MultiViewDataset(ListDataset([(image(1), "a cat")]), RandomViews())[0][1] == "a cat"
    with pytest.raises(ValueError, match="target"):
        MultiViewDataset(ListDataset([]), RandomViews(), target="nope")


def test_channels_follow_the_views():
    gray = MultiViewDataset(ListDataset([(image(9, channels=1), 0)]), RandomViews())
    assert gray[0][0][0].shape == (3, 8, 8)
    rgb = torch.stack([torch.full((2, 2), 255), torch.zeros(2, 2), torch.zeros(2, 2)]).to(torch.uint8)
    assert match_channels(rgb, 1).tolist() == [[[76, 76], [76, 76]]]  # 0.299 * 255, as Pillow's convert("L")
    assert match_channels(rgb, None) is rgb


def test_collate_views_shapes_targets_and_skipped():
    skipped = Skipped("bad.jpg", "truncated image")
    batch = [([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)], 2), skipped, ([torch.zeros(3, 8, 8)] * 2, 0)]
    views, targets, dropped = collate_views(batch)
    assert len(views) == 2 and views[0].shape == (2, 3, 8, 8) and views[1][0].eq(1).all()
    assert targets.dtype == torch.int64 and targets.tolist() == [2, 0] and dropped == [skipped]
    views, captions, _ = collate_views([([torch.zeros(1, 4, 4)], "a"), ([torch.zeros(1, 4, 4)], "b")])
    assert captions == ["a", "b"] and views[0].shape == (2, 1, 4, 4)
    views, targets, dropped = collate_views([skipped, skipped])
    assert views == [] and targets.shape == (0,) and len(dropped) == 2
    with pytest.raises(ValueError, match=r"view 0 has different shapes.*channels=1 or 3"):
        collate_views([([torch.zeros(1, 4, 4)], 0), ([torch.zeros(3, 4, 4)], 1)])


def test_iterable_datasets_stay_iterable_with_unique_indices():
    items = [(image(i), -1) for i in range(6)] + [Skipped("s", "r")]
    dataset = MultiViewDataset(Stream(items), RandomViews())
    assert isinstance(dataset, IterableMultiViewDataset) and isinstance(dataset, IterableDataset)
    assert type(pickle.loads(pickle.dumps(dataset))) is IterableMultiViewDataset  # spawn start method
    loader = DataLoader(dataset, batch_size=4, collate_fn=collate_views)
    report, indices = SkipReport(), []
    for views, targets in report.track(loader):
        indices += targets.tolist()
        assert views[0].shape[1:] == (3, 8, 8)
    assert indices == list(range(6)) and report.count == 1


def run_epoch(dataset, seed):
    loader = DataLoader(
        dataset, batch_size=4, shuffle=True, num_workers=2, collate_fn=collate_views, **reproducible_loader_kwargs(seed)
    )
    return [(torch.stack(views), targets) for views, targets, _ in loader]


def test_same_seed_gives_identical_batches_of_random_views():
    dataset = MultiViewDataset(ListDataset([(image(10 * i, h=16, w=14), -1) for i in range(12)]), RandomViews())
    first, again, other = run_epoch(dataset, 7), run_epoch(dataset, 7), run_epoch(dataset, 8)
    assert len(first) == 3
    for (views_a, targets_a), (views_b, targets_b) in zip(first, again, strict=True):
        assert torch.equal(targets_a, targets_b) and torch.equal(views_a, views_b)
    assert not all(torch.equal(a, b) for (a, _), (b, _) in zip(first, other, strict=True))


def test_seed_worker_seeds_random_and_numpy():
    torch.manual_seed(123)
    seed_worker(0)
    a = (random.random(), np.random.rand())  # noqa: NPY002
    torch.manual_seed(123)
    seed_worker(0)
    assert (random.random(), np.random.rand()) == a  # noqa: NPY002
