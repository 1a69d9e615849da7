"""A checkpoint written at the end of an epoch, resumed where the uninterrupted run would go on.

Lightning (2.6) writes the epoch-end checkpoint (``ModelCheckpoint(save_on_train_epoch_end=True)``) in
``on_train_epoch_end``, after the fit loop counted the epoch as *processed* but before it counted it as *completed*.
Resuming a run that ends by epochs, Lightning finishes that bookkeeping itself. Resuming one that ends by
``max_steps`` (``trainer.max_steps``: an iteration-based run) it does not: the loop goes on in the old epoch and
trains one batch too many (``batch_idx`` = the epoch's length, drawn from the next epoch's order), and every later
epoch reads its sampler's order one epoch ahead (the sampler epoch is the *processed* count). Measured on
``simclr-digits`` with ``trainer.max_steps=25``: the resumed run's weights differed from the uninterrupted run's by
up to 0.2 and it ended at "epoch 2 batch 2" instead of "epoch 2 batch 3".

:func:`continue_after_epoch_end` rewrites the loop counters of such a checkpoint, as it is loaded, into the state of
one written between two steps: either the epoch is complete (the next one starts, its sampler order and views those
of the uninterrupted run) or, when the run stopped inside the epoch (``max_steps`` reached mid-epoch: every run's
final checkpoint), the epoch continues after the batches it trained. Checkpoints already on disk resume exactly too.
"""

from __future__ import annotations

from typing import Any

_STEP_PROGRESS = (  # per-epoch ("current") counters of the steps, reset when an epoch starts
    ("epoch_loop.scheduler_progress",),
    ("epoch_loop.automatic_optimization.optim_progress", "optimizer", "step"),
    ("epoch_loop.automatic_optimization.optim_progress", "optimizer", "zero_grad"),
    ("epoch_loop.manual_optimization.optim_step_progress",),
)


def _find(state: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    for key in keys:
        state = state.get(key) if isinstance(state, dict) else None
        if state is None:
            return None
    return state


def continue_after_epoch_end(checkpoint: dict[str, Any]) -> str | None:
    """Rewrite, in place, the fit loop's counters of a checkpoint saved at the end of an epoch (see the module
    docstring). Returns ``"next epoch"`` or ``"same epoch"`` for what the resumed loop will do, None when the
    checkpoint was not written at an epoch's end (a mid-epoch step checkpoint, which Lightning resumes exactly)."""
    fit = _find(checkpoint, ("loops", "fit_loop"))
    epochs = _find(fit or {}, ("epoch_progress",))
    batches = _find(fit or {}, ("epoch_loop.batch_progress",))
    if epochs is None or batches is None:
        return None
    if any(epochs[part]["processed"] != epochs[part]["completed"] + 1 for part in ("total", "current")):
        return None
    if batches.get("is_last_batch"):  # every batch of the epoch trained: the epoch is complete
        for part in ("total", "current"):
            epochs[part]["completed"] = epochs[part]["processed"]
        batches["current"] = dict.fromkeys(batches["current"], 0)
        batches["is_last_batch"] = False
        for keys in _STEP_PROGRESS:
            progress = _find(fit, keys)
            if progress is not None:
                progress["current"] = dict.fromkeys(progress["current"], 0)
        return "next epoch"
    # stopped inside the epoch (max_steps): the epoch is not processed yet; its trained batches are kept, so the
    # loop continues after them (the data position in the checkpoint starts the sampler there)
    for part in ("total", "current"):
        epochs[part]["processed"] = epochs[part]["completed"]
    return "same epoch"
