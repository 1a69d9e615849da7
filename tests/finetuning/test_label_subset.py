"""Class-balanced label draws: sizes, seeds, nesting and the errors a user meets."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.finetuning import balanced_label_subset

LABELS = np.repeat(np.arange(4), [30, 20, 50, 7])  # unbalanced classes
LABELS_WITH_UNLABELLED = np.concatenate([LABELS, -np.ones(40, dtype=np.int64)])


def test_labels_per_class_draws_exactly_n_of_every_class_and_no_unlabelled():
    idx = balanced_label_subset(LABELS_WITH_UNLABELLED, labels_per_class=5, seed=3)
    assert np.all(np.diff(idx) > 0)  # sorted, no repeats
    assert np.bincount(LABELS_WITH_UNLABELLED[idx], minlength=4).tolist() == [5, 5, 5, 5]


def test_same_seed_same_draw_other_seed_other_draw_and_larger_draws_extend_smaller_ones():
    a = balanced_label_subset(LABELS, labels_per_class=5, seed=0)
    assert np.array_equal(a, balanced_label_subset(LABELS, labels_per_class=5, seed=0))
    assert not np.array_equal(a, balanced_label_subset(LABELS, labels_per_class=5, seed=1))
    assert set(a) <= set(balanced_label_subset(LABELS, labels_per_class=7, seed=0))


def test_label_fraction_rounds_per_class_with_at_least_one():
    idx = balanced_label_subset(LABELS, label_fraction=0.1, seed=0)
    expected = [max(1, round(0.1 * n)) for n in (30, 20, 50, 7)]  # 3, 2, 5, 1
    assert np.bincount(LABELS[idx], minlength=4).tolist() == expected


def test_too_few_images_in_a_class_names_the_class():
    with pytest.raises(ValueError, match=r"'boot' has only 7 labelled images"):
        balanced_label_subset(LABELS, labels_per_class=8, class_names=["a", "b", "c", "boot"])


@pytest.mark.parametrize(
    ("per_class", "fraction", "message"),
    [(None, None, "exactly one"), (5, 0.1, "exactly one"), (0, None, ">= 1"), (None, 1.5, r"\(0, 1\]")],
)
def test_bad_sizes_are_refused(per_class, fraction, message):
    with pytest.raises(ValueError, match=message):
        balanced_label_subset(LABELS, labels_per_class=per_class, label_fraction=fraction)
