"""Small, fast run configs for the trainer tests (sklearn's digits, the small CNN, a few steps)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from contrastkit.train.config import RunConfig, load_config


def tiny_config(out_dir: Path, *overrides: str, method: str = "simclr", **sections: Any) -> RunConfig:
    """A SimCLR-on-digits run of a few steps; ``overrides`` as on the command line."""
    base: dict[str, Any] = {
        "name": "tiny",
        "out_dir": str(out_dir),
        "seed": 0,
        "method": {"name": method, "hidden_dim": 64, "projection_dim": 32, "temperature": 0.5},
        "views": {"recipe": "simclr", "jitter_strength": 0.5},
        "backbone": {"name": "small_cnn"},
        "data": {"name": "digits", "batch_size": 64, "num_workers": 0},
        "optim": {"name": "sgd", "lr": 0.1, "warmup_epochs": 0.5},
        "trainer": {"max_epochs": 2, "enable_progress_bar": False, "log_every_n_steps": 1, "accelerator": "cpu"},
        "monitor": {"every_n_epochs": 0},
        "final_eval": {"enabled": False},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(base, list(overrides))
