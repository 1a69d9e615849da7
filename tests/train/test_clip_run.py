"""A short LiT run (locked MiniLM text tower) on digits through the trainer: zero-shot beats chance by a wide
margin on the seen classes; held-out classes are reported next to chance; the encoder exports, loads and searches."""

import json
import math

import pytest
import torch

from contrastkit.backbones import ImageTextEncoder
from contrastkit.cli.main import main
from contrastkit.train.config import load_config
from contrastkit.train.fit import train

SEEN = ["0", "1", "2", "3", "4", "5", "6", "7"]  # 8 and 9 are never captioned: held out for zero-shot


def clip_config(out_dir, *overrides):
    return load_config(
        {
            "name": "lit",
            "out_dir": str(out_dir),
            "method": {"name": "clip", "text_encoder": "minilm", "lock_text": True, "embed_dim": 64},
            "views": {"recipe": "clip"},
            "backbone": {"name": "small_cnn"},
            "data": {
                "name": "digits",
                "batch_size": 64,
                "num_workers": 0,
                "caption_templates": ["a photo of the number {}.", "a handwritten digit {}.", "the digit {}."],
            },
            "optim": {"name": "adamw", "lr": 0.003, "weight_decay": 0.01, "warmup_epochs": 0.5},
            "trainer": {"max_epochs": 4, "enable_progress_bar": False, "accelerator": "cpu"},
            "monitor": {"every_n_epochs": 0},
            "final_eval": {"train_size": 500, "test_size": 300},
        },
        list(overrides),
    )


def wide_margin(chance: float, n: int) -> float:
    """Well above guessing: 2.5x chance, and at least 6 binomial standard deviations above it."""
    return max(2.5 * chance, chance + 6 * math.sqrt(chance * (1 - chance) / n))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    config = clip_config(out, f"data.classes={json.dumps(SEEN)}".replace('"', "'"))
    return train(config), config


def test_lit_zero_shot_beats_chance_on_seen_classes_and_reports_unseen(run):
    result, _ = run
    rows = {(r["classes"], r["encoder"]): r for r in result.final_eval["zero_shot"]}
    seen = rows[("seen classes", "clip (trained)")]
    assert seen["num_classes"] == len(SEEN) and seen["chance"] == pytest.approx(1 / len(SEEN))
    assert seen["top1"] > wide_margin(seen["chance"], seen["images"]), seen
    assert seen["top1"] > rows[("seen classes", "random init")]["top1"] + 0.2
    unseen = rows[("unseen classes", "clip (trained)")]
    assert unseen["num_classes"] == 2 and unseen["chance"] == 0.5 and 0.0 <= unseen["top1"] <= 1.0
    saved = json.loads((result.run_dir / "final_eval.json").read_text())
    assert saved["zero_shot"][0]["top1"] == pytest.approx(result.final_eval["zero_shot"][0]["top1"])


def test_export_load_zeroshot_and_text_search(run, tmp_path, capsys):
    result, _ = run
    from contrastkit import load_encoder

    exported = tmp_path / "from_ckpt.safetensors"
    assert main(["export", str(result.checkpoint), "--out", str(exported)]) == 0
    a, b = load_encoder(result.encoder), load_encoder(exported)
    assert (
        a.encoder_info["kind"] == "dual" and isinstance(a, ImageTextEncoder) and type(a.model).__name__ == "DualEncoder"
    )
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), name
    capsys.readouterr()
    assert main(["zeroshot", str(result.encoder), "--data", "digits", "--classes", ",".join([*SEEN, "8", "9"])]) == 0
    assert "top-1" in capsys.readouterr().out
    emb = tmp_path / "emb"
    assert main(["embed", str(result.encoder), "digits", "--out", str(emb), "--quiet", "--num-workers", "0"]) == 0
    assert main(["index", "build", str(emb), "--out", str(tmp_path / "digits.faiss")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "digits.faiss"), "--text", "a handwritten digit 3.", "-k", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 5
    from contrastkit.data import load_dataset

    targets = load_dataset("digits").targets
    hits = [int(targets[int(line.split()[-1])]) for line in lines]
    assert hits.count(3) >= 3, hits  # text -> image search finds threes


def test_clip_without_captions_is_refused_before_training(tmp_path):
    config = clip_config(tmp_path, "data.caption_templates=[]")
    with pytest.raises(ValueError, match="no captions"):
        train(config)
    with pytest.raises(ValueError, match="exactly one"):
        clip_config(tmp_path, "data.caption_templates=['no slot']")
    with pytest.raises(ValueError, match="not classes of"):
        train(clip_config(tmp_path, "data.classes=['cat']"))
    with pytest.raises(ValueError, match=r"data.class_wording: class wording for \['cat'\]: not classes"):
        train(clip_config(tmp_path, "data.class_wording={cat: 'a small cat'}"))


def test_clip_pairs_listing_trains_and_scores_held_out_retrieval(tmp_path):
    from PIL import Image

    from contrastkit.data import load_dataset

    digits = load_dataset("digits")
    rows = ["image,caption"]
    for i in range(160):
        Image.fromarray(digits.images[i, 0].numpy()).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png,a handwritten digit {int(digits.targets[i])}")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    config = load_config(
        "clip-pairs",
        [f"data.path={tmp_path / 'pairs.csv'}", f"out_dir={tmp_path}", "backbone.name=small_cnn", "data.channels=1",
         "data.image_size=16", "data.batch_size=32", "data.num_workers=0", "data.train_fraction=0.8",
         "trainer.max_epochs=1", "trainer.enable_progress_bar=false", "trainer.accelerator=cpu", "method.embed_dim=32",
         "monitor.every_n_epochs=0"],
    )  # fmt: skip
    result = train(config)
    rows = {r["encoder"]: r for r in result.final_eval["retrieval"]}
    assert rows["clip (trained)"]["pairs"] == 32  # the 20% never trained on
    for direction in ("image_to_text", "text_to_image"):
        scores = rows["clip (trained)"][direction]
        assert 0.0 <= scores["recall@1"] <= scores["recall@5"] <= scores["recall@10"] <= 1.0
