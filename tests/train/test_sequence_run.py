"""CPC through the trainer, as a user runs it: the cpc-signals recipe (a short version), its final table, the
exported sequence encoder (frames + GRU) computing exactly the method's embeddings, and .npy data."""

import numpy as np
import pytest
import torch

import contrastkit
from contrastkit.cli.main import main
from contrastkit.data import load_dataset
from contrastkit.train.config import load_config
from contrastkit.train.fit import train

SHORT = [
    "data.train_fraction=0.25",  # 2,000 of the 8,000 training signals
    "trainer.max_epochs=2",
    "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu",
    "final_eval.train_size=2000",
    "final_eval.test_size=500",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("cpc")
    return train(load_config("cpc-signals", [*SHORT, f"out_dir={out}"]))


def test_cpc_trains_and_its_contexts_beat_random_init(run):
    rows = {r["encoder"]: r for r in run.final_eval["rows"]}
    assert set(rows) == {"cpc (trained)", "random init", "raw signal"}
    assert run.final_eval["test_images"] == 500 and rows["cpc (trained)"]["dim"] == 64
    trained, initial = rows["cpc (trained)"], rows["random init"]
    assert trained["linear_probe"] > initial["linear_probe"] + 0.03, (trained, initial)  # chance: 0.25
    assert trained["knn_top1"] > 0.5


def test_the_exported_encoder_is_the_frames_and_the_gru_and_embeds_as_the_method(run, tmp_path):
    encoder = contrastkit.load_encoder(run.encoder)
    info = encoder.encoder_info
    assert info["kind"] == "sequence" and info["context_dim"] == 64 and info["in_chans"] == 1
    signals = load_dataset("synthetic-signals", split="test").signals[:16]  # (16, 1, 128)
    ckpt = torch.load(run.checkpoint, map_location="cpu", weights_only=True)
    assert set(ckpt["contrastkit"]["encoder_keys"].values()) >= {"method.gru.weight_ih_l0"}
    exported = tmp_path / "from_ckpt.safetensors"
    assert main(["export", str(run.checkpoint), "--out", str(exported)]) == 0
    again = contrastkit.load_encoder(exported)
    with torch.no_grad():
        torch.testing.assert_close(encoder(signals), again(signals))
        frames = encoder.model.frames.forward_sequence(signals)  # (16, T, D)
        contexts = encoder.model.gru(frames)[0]  # (16, T, 64): written out, the pooled GRU contexts
    torch.testing.assert_close(encoder(signals), contexts.mean(1))


def test_npy_signals_train_and_bad_files_are_refused_by_name(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(64)
    labels = rng.integers(0, 2, 300)
    signals = np.sin(2 * np.pi * t / np.where(labels, 8.0, 20.0)[:, None] + rng.uniform(0, 6, (300, 1)))  # (300, 64)
    np.save(tmp_path / "sig.npy", signals.astype(np.float32))
    np.save(tmp_path / "sig.labels.npy", labels)
    overrides = [
        f"data.path={tmp_path / 'sig.npy'}",
        f"out_dir={tmp_path}",
        "data.batch_size=32",
        "method.prediction_steps=2",
    ]
    result = train(
        load_config("cpc-signals", [*overrides, "trainer.max_epochs=1", "trainer.enable_progress_bar=false"])
    )
    assert result.final_eval["test_images"] == 60  # a held-out fifth of the 300 labelled signals
    np.save(tmp_path / "bad.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"bad\.npy: not a plain numeric \.npy file"):
        train(load_config("cpc-signals", [f"data.path={tmp_path / 'bad.npy'}", f"out_dir={tmp_path}", "name=bad"]))
    with pytest.raises(ValueError, match="'digits' holds images"):
        train(load_config("cpc-signals", ["data.name=digits", f"out_dir={tmp_path}", "name=images"]))
