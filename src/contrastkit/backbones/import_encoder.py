"""``contrastkit import-encoder``: a pretrained model from another library as a contrastkit encoder file.

Sources (``LIBRARY:NAME``, weights from a local file or folder; nothing is downloaded):

* ``torchvision:ARCH --weights FILE``: a torchvision classification model's state dict (``.pth`` read with
  ``weights_only=True``, or ``.safetensors``); its classifier weights are dropped.
* ``timm:MODEL --weights FILE``: a timm model's state dict (``.safetensors``, ``.pth``, ``.bin``); for timm's
  EfficientNets also a checkpoint of EfficientNet-PyTorch (``efficientnet_pytorch``, ``efficientnet_lite_pytorch``:
  ``_conv_stem``, ``_blocks.N...``), renamed to timm's layout.
* ``open_clip:MODEL --weights FILE``: an open_clip model (built-in architecture name) with its checkpoint: image
  and text towers, so zero-shot and text search work.
* ``hf:FOLDER``: a Hugging Face ``transformers`` folder (``config.json`` + weights): a CLIP model (image and text
  towers) or a vision encoder (ViT, DINOv2, ...), with its ``preprocessor_config.json``.
* ``sentence-transformers:FOLDER``: a sentence-transformers model folder (``modules.json``: a transformer, its
  pooling, optionally ``Normalize``): a text encoder whose embeddings equal the library's ``encode``.

The encoder file records the preprocessing that comes with the model (input size, mean, std, interpolation).
Weights that do not fit are refused with the names of the missing and unexpected keys.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from contrastkit.backbones.efficientnet_pytorch_keys import efficientnet_pytorch_to_timm, is_efficientnet_pytorch
from contrastkit.backbones.encoder_file import save_encoder

LIBRARIES = ("torchvision", "timm", "open_clip", "hf", "sentence-transformers")
FOLDER_LIBRARIES = ("hf", "sentence-transformers")  # the folder brings its weights (no --weights)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
SHOWN_KEYS = 8  # keys named in a mismatch error


class ImportSourceError(ValueError):
    """A source that cannot be imported; the message names the file and what is wrong."""


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Tensors of a weights file: safetensors, or a torch file read with ``weights_only=True`` (nothing unpickled
    but tensors and plain containers); a ``{"state_dict": ...}`` or ``{"model": ...}`` wrapper is unwrapped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # an unpickling refusal, a truncated file, not a torch file at all
        raise ImportSourceError(f"{path}: not a readable weights file ({type(e).__name__}: {str(e)[:200]})") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ImportSourceError(f"{path}: expected a state dict (names -> tensors)")
    return state


def load_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str, drop: tuple[str, ...] = ()) -> None:
    """Load ``state`` into ``model`` exactly (after dropping keys that start with ``drop``: a classifier head);
    a missing, unexpected or mis-shaped key is an error that names them."""
    state = {k: v for k, v in state.items() if not k.startswith(drop)} if drop else state
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    problems = []
    for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", shapes)):
        if keys:
            more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
            problems.append(f"{len(keys)} {what}: {', '.join(keys[:SHOWN_KEYS])}{more}")
    if problems:
        raise ImportSourceError(f"{source}: the weights do not fit the architecture; keys " + "; ".join(problems))
    model.load_state_dict(state, strict=True)


def _torchvision(name: str, weights: str) -> tuple[nn.Module, dict[str, Any]]:
    from contrastkit.backbones.registry import create_backbone

    model = create_backbone("torchvision_model", in_chans=3, arch=name)
    load_strict(model, read_state_dict(weights), weights, drop=(model.removed_head + ".",))
    size = 224
    info = {"backbone": "torchvision_model", "backbone_kwargs": {"arch": name}, "in_chans": 3, "input_size": size}
    return model, {**info, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "interpolation": "bilinear"}


def _timm(name: str, weights: str) -> tuple[nn.Module, dict[str, Any]]:
    from contrastkit.backbones.registry import create_backbone

    model = create_backbone("timm_model", in_chans=3, model_name=name)
    classifier = model.pretrained_cfg.get("classifier") or "head"
    heads = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    state, source = read_state_dict(weights), weights
    if is_efficientnet_pytorch(state):  # EfficientNet-PyTorch's key layout, renamed for timm's EfficientNets
        if not hasattr(model, "blocks") or not name.startswith(("tf_efficientnet", "efficientnet")):
            raise ImportSourceError(
                f"{weights}: an EfficientNet-PyTorch checkpoint (keys _conv_stem, _blocks.N...) imports into a timm "
                f"EfficientNet (timm:tf_efficientnet_lite0, timm:tf_efficientnet_b0, ...), not {name!r}"
            )
        state, source = efficientnet_pytorch_to_timm(state, model), f"{weights} (read as EfficientNet-PyTorch's layout)"
    load_strict(model, state, source, drop=tuple(h + "." for h in heads))
    import timm

    data = timm.data.resolve_data_config({}, model=model)
    info = {"backbone": "timm_model", "backbone_kwargs": {"model_name": name}, "in_chans": int(data["input_size"][0])}
    info.update(input_size=int(data["input_size"][-1]), mean=list(data["mean"]), std=list(data["std"]))
    return model, {**info, "interpolation": data.get("interpolation", "bicubic")}


def _open_clip(name: str, weights: str) -> tuple[nn.Module, dict[str, Any]]:
    from contrastkit.backbones.open_clip_encoder import OpenCLIPEncoder, _open_clip

    open_clip = _open_clip()
    model_cfg = open_clip.get_model_config(name)
    if model_cfg is None:
        raise ImportSourceError(f"unknown open_clip architecture {name!r} (open_clip.list_models() lists them)")
    model = OpenCLIPEncoder(model_cfg)
    state = read_state_dict(weights)
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    load_strict(model.clip, state, weights)
    return model, _open_clip_info(model, model_cfg)


def _open_clip_info(model: nn.Module, model_cfg: dict[str, Any]) -> dict[str, Any]:
    visual = model.clip.visual
    size = visual.image_size if isinstance(visual.image_size, int) else visual.image_size[0]
    mean = getattr(visual, "image_mean", None) or (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's
    std = getattr(visual, "image_std", None) or (0.26862954, 0.26130258, 0.27577711)
    return {
        "kind": "dual",
        "library": "open_clip",
        "model_cfg": model_cfg,
        "in_chans": 3,
        "input_size": int(size),
        "mean": list(mean),
        "std": list(std),
        "interpolation": "bicubic",
    }


def _hf(folder: str) -> tuple[nn.Module, dict[str, Any]]:
    folder_path = Path(folder)
    config_file = folder_path / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{folder}: no config.json (expected a Hugging Face model folder)")
    config = json.loads(config_file.read_text(encoding="utf-8"))
    prep = _hf_preprocessing(folder_path, config)
    if config.get("model_type") == "clip":
        from transformers import CLIPModel

        from contrastkit.backbones.hf_encoder import HFCLIPEncoder

        files = {
            n: (folder_path / n).read_text(encoding="utf-8") for n in TOKENIZER_FILES if (folder_path / n).is_file()
        }
        if not files:
            raise FileNotFoundError(f"{folder}: a CLIP model without tokenizer files ({', '.join(TOKENIZER_FILES)})")
        model = HFCLIPEncoder(config, files)
        _load_hf(model.model, CLIPModel, folder)
        info = {"kind": "dual", "library": "transformers", "hf_config": config, "tokenizer_files": files}
        return model, {**info, "in_chans": 3, **prep}
    from transformers import AutoModel

    from contrastkit.backbones.registry import create_backbone

    model = create_backbone("hf_vision", in_chans=3, config=config)
    _load_hf(model.model, AutoModel, folder)
    return model, {"backbone": "hf_vision", "backbone_kwargs": {"config": config}, "in_chans": 3, **prep}


def _load_hf(model: nn.Module, model_class: Any, folder: str) -> None:
    """Load the folder's weights with transformers itself (it knows its checkpoints' key renamings), locally only;
    missing or mis-shaped weights are refused by name (a task head's unexpected weights are left out)."""
    pretrained, loading = model_class.from_pretrained(folder, output_loading_info=True, local_files_only=True)
    missing = sorted(loading.get("missing_keys") or [])
    shapes = sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in loading.get("mismatched_keys") or [])
    problems = [f"{len(keys)} {what}: {', '.join(keys[:SHOWN_KEYS])}" for what, keys in
                (("missing", missing), ("of another shape", shapes)) if keys]  # fmt: skip
    if problems:
        raise ImportSourceError(f"{folder}: the weights do not fit the architecture; keys " + "; ".join(problems))
    model.load_state_dict(pretrained.state_dict(), strict=True)


def _hf_preprocessing(folder: Path, config: dict[str, Any]) -> dict[str, Any]:
    vision = config.get("vision_config", config)
    size = int(vision.get("image_size", 224))
    mean, std, interpolation = list(IMAGENET_MEAN), list(IMAGENET_STD), "bicubic"
    processor = folder / "preprocessor_config.json"
    if processor.is_file():
        p = json.loads(processor.read_text(encoding="utf-8"))
        mean, std = list(p.get("image_mean", mean)), list(p.get("image_std", std))
        crop = p.get("crop_size") or p.get("size")
        if isinstance(crop, dict):
            crop = crop.get("height") or crop.get("shortest_edge")
        size = int(crop or size)
        interpolation = {2: "bilinear", 3: "bicubic"}.get(p.get("resample"), interpolation)
    return {"input_size": size, "mean": mean, "std": std, "interpolation": interpolation}


ST_MODULES = ("Transformer", "Pooling", "Normalize")  # the sentence-transformers modules read, in their order
ST_POOLING_KEYS = {  # 1_Pooling/config.json's flags -> sentence-transformers' pooling modes, in its order
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
# the tokenizer files stored in the encoder file: tokenizer.json holds the whole fast tokenizer; without it, the
# vocabulary files it is converted from
ST_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
ST_VOCABULARY_FILES = ("vocab.txt", "vocab.json", "merges.txt")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ImportSourceError(f"{path}: not valid JSON ({e})") from None


def _st_modules(folder: Path) -> dict[str, Path]:
    """Module class name -> its folder, from ``modules.json``: a Transformer, then a Pooling, then optionally a
    Normalize; any other module (Dense, CNN, word embeddings, ...) is refused by name."""
    modules_file = folder / "modules.json"
    if not folder.is_dir():
        raise FileNotFoundError(f"sentence-transformers folder {str(folder)!r} does not exist")
    if not modules_file.is_file():
        raise FileNotFoundError(
            f"{folder}: no modules.json (expected a sentence-transformers model folder: modules.json, "
            "sentence_bert_config.json, config.json, tokenizer files and weights)"
        )
    entries = _read_json(modules_file)
    if not isinstance(entries, list) or not all(isinstance(e, dict) and "type" in e for e in entries):
        raise ImportSourceError(f"{modules_file}: expected a list of modules with a 'type' each")
    modules: dict[str, Path] = {}
    for entry in sorted(entries, key=lambda e: int(e.get("idx", 0))):
        kind = str(entry["type"])
        library, _, class_name = kind.rpartition(".")
        if not library.startswith("sentence_transformers") or class_name not in ST_MODULES or class_name in modules:
            raise ImportSourceError(
                f"{modules_file}: module {entry.get('name', '?')!r} ({kind}) is not supported: a sentence-transformers "
                f"folder imports with one each of {', '.join(ST_MODULES)} (Normalize optional), in that order"
            )
        modules[class_name] = folder / str(entry.get("path", ""))
    if list(modules)[:2] != ["Transformer", "Pooling"]:
        raise ImportSourceError(
            f"{modules_file}: modules {', '.join(modules)}: a Transformer then a Pooling module are needed"
        )
    return modules


def _st_pooling(pooling_folder: Path) -> tuple[list[str], int | None]:
    """The pooling modes of a Pooling module's ``config.json`` (its ``pooling_mode_*`` flags or ``pooling_mode``)
    and the token feature size it states."""
    from contrastkit.backbones.sentence_transformer_encoder import POOLING_MODES

    config_file = pooling_folder / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{pooling_folder}: no config.json (the Pooling module's settings)")
    config = _read_json(config_file)
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        modes = [mode] if isinstance(mode, str) else list(mode)
    else:
        modes = [m for key, m in ST_POOLING_KEYS.items() if config.get(key)] or ["mean"]
    unknown = [m for m in modes if m not in POOLING_MODES]
    if unknown:
        raise ImportSourceError(f"{config_file}: pooling mode {unknown[0]!r} is not one of {', '.join(POOLING_MODES)}")
    return modes, config.get("word_embedding_dimension", config.get("embedding_dimension"))


def _st_tokenizer_files(folder: Path) -> dict[str, str]:
    names = ST_TOKENIZER_FILES if (folder / "tokenizer.json").is_file() else ST_TOKENIZER_FILES + ST_VOCABULARY_FILES
    files = {n: (folder / n).read_text(encoding="utf-8") for n in names if (folder / n).is_file()}
    if not set(files) & {"tokenizer.json", *ST_VOCABULARY_FILES}:
        raise FileNotFoundError(f"{folder}: no tokenizer files (tokenizer.json, or {', '.join(ST_VOCABULARY_FILES)})")
    return files


def _st_max_length(folder: Path, sbert: dict[str, Any], tokenizer_files: dict[str, str], config: dict) -> int:
    """Tokens per text: ``max_seq_length``, else as sentence-transformers: the tokenizer's limit, at most the
    position embeddings'."""
    if sbert.get("max_seq_length") is not None:
        return int(sbert["max_seq_length"])
    tokenizer_config = json.loads(tokenizer_files.get("tokenizer_config.json", "{}"))
    limits = [tokenizer_config.get("model_max_length"), config.get("max_position_embeddings")]
    known = [int(n) for n in limits if isinstance(n, (int, float)) and 0 < n < 1e9]  # (1e30: "no limit")
    if not known:
        raise ImportSourceError(f"{folder}: no max_seq_length in sentence_bert_config.json and no length limit")
    return min(known)


def _st_weights(folder: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """The transformer's weights file and state dict: ``model.safetensors``, else ``pytorch_model.bin`` (read
    weights-only)."""
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return folder / name, read_state_dict(folder / name)
    sharded = [n for n in ("model.safetensors.index.json", "pytorch_model.bin.index.json") if (folder / n).is_file()]
    what = f"sharded weights ({sharded[0]}) are not supported" if sharded else "no weights"
    raise FileNotFoundError(f"{folder}: {what}: model.safetensors or pytorch_model.bin expected")


def _sentence_transformers(folder: str) -> tuple[nn.Module, dict[str, Any]]:
    from contrastkit.backbones.sentence_transformer_encoder import SentenceTransformerEncoder

    modules = _st_modules(Path(folder))
    transformer = modules["Transformer"]  # its folder: config.json, sentence_bert_config.json, tokenizer, weights
    if not (transformer / "config.json").is_file():
        raise FileNotFoundError(f"{transformer}: no config.json (the transformer's architecture)")
    config = _read_json(transformer / "config.json")
    if config.get("is_encoder_decoder"):
        raise ImportSourceError(f"{transformer / 'config.json'}: encoder-decoder models are not supported")
    prompts = Path(folder) / "config_sentence_transformers.json"
    if prompts.is_file() and _read_json(prompts).get("default_prompt_name"):
        raise ImportSourceError(f"{prompts}: a default prompt is set; models that prepend prompts are not supported")
    sbert_file = transformer / "sentence_bert_config.json"
    sbert = _read_json(sbert_file) if sbert_file.is_file() else {}
    tokenizer_files = _st_tokenizer_files(transformer)
    pooling, pooled_dim = _st_pooling(modules["Pooling"])
    weights, state = _st_weights(transformer)
    model = SentenceTransformerEncoder(
        config,
        tokenizer_files,
        pooling=pooling,
        normalize="Normalize" in modules,
        do_lower_case=bool(sbert.get("do_lower_case", False)),
        max_length=_st_max_length(transformer, sbert, tokenizer_files, config),
        pooler=any(k.startswith("pooler.") for k in state),
    )
    hidden = int(model.model.config.hidden_size)
    if pooled_dim is not None and int(pooled_dim) != hidden:
        raise ImportSourceError(
            f"{modules['Pooling']}: pools {pooled_dim}-d token features, the model's are {hidden}-d"
        )
    computed = {name for name, _ in model.model.named_buffers()} - set(model.model.state_dict())
    load_strict(model.model, {k: v for k, v in state.items() if k not in computed}, str(weights))  # (position_ids)
    return model, {"kind": "text", "text_encoder": model.text_config}


def import_encoder(source: str, out: str | os.PathLike, weights: str | None = None) -> Path:
    """Write the model ``source`` names (``LIBRARY:NAME``; see the module docstring) as a contrastkit encoder file.

    Raises:
        ValueError: an unknown library or architecture, or weights that do not fit (keys named).
        FileNotFoundError: a missing weights file or folder.
    """
    library, _, name = source.partition(":")
    if library not in LIBRARIES or not name:
        raise ValueError(f"source must be LIBRARY:NAME with LIBRARY one of {', '.join(LIBRARIES)}, got {source!r}")
    if library in FOLDER_LIBRARIES:
        if weights is not None:
            raise ValueError(f"{library}:FOLDER takes its weights from the folder: leave out --weights")
        model, info = {"hf": _hf, "sentence-transformers": _sentence_transformers}[library](name)
    elif weights is None:
        raise ValueError(f"{library} models need --weights FILE (a local state dict; nothing is downloaded)")
    else:
        builders = {"torchvision": _torchvision, "timm": _timm, "open_clip": _open_clip}
        model, info = builders[library](name, weights)
    origin = {"library": library, "name": name, "weights": None if weights is None else str(weights)}
    info = {**info, "method": f"imported ({source})", "source": origin}
    return save_encoder(model.eval(), out, info)
