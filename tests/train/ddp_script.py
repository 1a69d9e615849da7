"""Trains tiny SimCLR for a few steps; run directly (1 process) or under torchrun (DDP, gloo). Used by test_ddp.py.

Usage: python ddp_script.py OUT_DIR PROCESSES GLOBAL_BATCH [GRAD_CACHE_CHUNK [METHOD [NODES]]]
(METHOD: simclr or clip; NODES: the PROCESSES are spread over this many "nodes", one launcher each)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.train.helpers

from torch import nn

from contrastkit.backbones import register_backbone
from contrastkit.train.config import load_config
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


@register_backbone
def groupnorm_cnn(in_chans: int = 1, small_input: bool = False) -> nn.Module:
    """A small CNN with GroupNorm: per-sample statistics, so the result cannot depend on how a batch is split
    (PyTorch's SyncBatchNorm needs CUDA; on CPU processes BatchNorm statistics would be per process)."""
    del small_input
    model = nn.Sequential(
        nn.Conv2d(in_chans, 16, 3, padding=1),
        nn.GroupNorm(4, 16),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.GroupNorm(4, 32),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    model.feature_dim = 32
    return model


if __name__ == "__main__":
    out_dir, processes, global_batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    chunk = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    if len(sys.argv) > 5 and sys.argv[5] == "clip":  # image-text, images and captions gathered across processes
        config = load_config(
            {
                "name": "tiny",
                "out_dir": str(out_dir),
                "method": {"name": "clip", "text_encoder": "transformer", "lock_text": False, "embed_dim": 16,
                           "text_width": 32, "text_layers": 1, "text_heads": 4},
                "views": {"recipe": "clip"},
                "backbone": {"name": "groupnorm_cnn"},
                # one template: the captions cannot depend on how the batch is sharded
                "data": {"name": "digits", "batch_size": global_batch // processes, "num_workers": 0,
                         "caption_templates": ["a handwritten digit {}."]},
                "optim": {"name": "adamw", "lr": 0.003},
                "trainer": {"max_epochs": 1, "max_steps": 6, "devices": str(processes), "accelerator": "cpu",
                            "strategy": "ddp" if processes > 1 else "auto", "log_every_n_steps": 1,
                            "enable_progress_bar": False, "grad_cache_chunk_size": chunk},
                "monitor": {"every_n_epochs": 0},
                "final_eval": {"enabled": False},
            }
        )  # fmt: skip
        train(config)
        sys.exit(0)
    nodes = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    config = tiny_config(
        out_dir,
        f"trainer.devices={processes // nodes}",
        f"trainer.num_nodes={nodes}",
        f"data.batch_size={global_batch // processes}",
        "trainer.strategy=" + ("ddp" if processes > 1 else "auto"),
        "trainer.max_steps=6",
        "backbone.name=groupnorm_cnn",
        "method.batch_norm=false",
        "trainer.max_epochs=1",
        # deterministic views (whole image, no flip or jitter): process count must not change what is drawn
        "views.crop_scale=[1.0,1.0]",
        "views.hflip_p=0.0",
        "views.jitter_p=0.0",
        "views.grayscale_p=0.0",
        f"trainer.grad_cache_chunk_size={chunk}",
    )
    train(config)
