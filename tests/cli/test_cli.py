"""The command line: recipes, train, export, load_encoder; errors print one line naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import contrastkit
from contrastkit.backbones import EncoderFileError
from contrastkit.cli.main import main
from contrastkit.train.fit import train
from tests.train.helpers import tiny_config


def test_recipes_lists_every_builtin_with_a_description(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "simclr-fashion-mnist" in out and "Chen et al. 2020" in out


def test_console_script_and_module_entry_point():
    done = subprocess.run([sys.executable, "-m", "contrastkit", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "train" in done.stdout and "export" in done.stdout


def test_print_config_shows_the_validated_config(capsys):
    assert main(["train", "simclr-fashion-mnist", "trainer.max_epochs=7", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert "max_epochs: 7" in out and "temperature: 0.2" in out


def test_bad_override_exits_2_with_the_key(capsys):
    assert main(["train", "simclr-fashion-mnist", "trainer.max_epoch=1"]) == 2
    err = capsys.readouterr().err
    assert "trainer.max_epoch" in err and "trainer.max_epochs" in err


def test_train_export_and_load_encoder_round_trip(tmp_path, capsys):
    result = train(tiny_config(tmp_path, "trainer.max_epochs=1"))
    assert result.encoder.is_file() and result.encoder.with_suffix(".json").is_file()
    exported = tmp_path / "exported.safetensors"
    assert main(["export", str(result.checkpoint), "--out", str(exported)]) == 0
    encoder = contrastkit.load_encoder(exported)
    info = json.loads(exported.with_suffix(".json").read_text())
    assert info["backbone"] == "small_cnn" and info["in_chans"] == 1 and info["input_size"] == 8
    # the exported weights are the checkpoint's backbone weights, and they compute the trained features
    state = torch.load(result.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    for key, value in encoder.model.state_dict().items():  # the file's keys: the model's
        torch.testing.assert_close(value, state[f"method.backbone.{key}"])
    trained = contrastkit.load_encoder(result.encoder)
    x = torch.randn(4, 1, 8, 8)
    torch.testing.assert_close(encoder(x), trained(x))
    assert encoder(x).shape == (4, encoder.feature_dim)
    # the checkpoint says where the encoder's weights are: export follows it, not the method's attribute names
    ckpt = torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    keys = ckpt["contrastkit"]["encoder_keys"]
    assert keys == {name: f"method.backbone.{name}" for name in encoder.model.state_dict()}
    ckpt["state_dict"] = {k.replace("method.backbone.", "method.net."): v for k, v in ckpt["state_dict"].items()}
    ckpt["contrastkit"]["encoder_keys"] = {k: v.replace("method.backbone.", "method.net.") for k, v in keys.items()}
    renamed = tmp_path / "renamed.ckpt"
    torch.save(ckpt, renamed)
    assert main(["export", str(renamed), "--out", str(tmp_path / "renamed.safetensors")]) == 0
    torch.testing.assert_close(contrastkit.load_encoder(tmp_path / "renamed.safetensors")(x), trained(x))


def test_export_refuses_files_that_are_not_contrastkit_checkpoints(tmp_path, capsys):
    plain = tmp_path / "plain.ckpt"
    torch.save({"weights": torch.zeros(2)}, plain)
    assert main(["export", str(plain), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "not a Lightning checkpoint" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "missing.ckpt"), "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "does not exist" in capsys.readouterr().err


class Evil:
    def __reduce__(self):
        return (print, ("pickled code ran",))


def test_export_never_unpickles_code(tmp_path, capsys):
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "payload": Evil()}, evil)
    assert main(["export", str(evil), "--out", str(tmp_path / "x.safetensors")]) == 2
    captured = capsys.readouterr()
    assert "pickled code ran" not in captured.out
    assert "weights_only" in captured.err


def test_load_encoder_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, foreign)
    with pytest.raises(EncoderFileError, match="not a contrastkit export"):
        contrastkit.load_encoder(foreign)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(EncoderFileError, match=r"junk\.safetensors: not a safetensors file"):
        contrastkit.load_encoder(junk)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        contrastkit.load_encoder(tmp_path / "missing.safetensors")


def test_an_unexpected_error_is_one_line_without_traceback_unless_debug(monkeypatch, tmp_path, capsys):
    import errno

    import contrastkit.train.fit as fit

    def boom(config):
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(fit, "train", boom)
    args = ["train", "simclr-fashion-mnist", f"out_dir={tmp_path}"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.strip() == (
        "contrastkit train: error: RuntimeError: boom (run `contrastkit --debug train ...` for the traceback)"
    )
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", *args])

    def full(config):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "last.ckpt"))

    monkeypatch.setattr(fit, "train", full)
    assert main(args) == 1
    assert capsys.readouterr().err.strip() == (
        f"contrastkit train: error: No space left on device ({tmp_path / 'last.ckpt'})"
    )


def test_output_into_a_closed_pipe_is_not_an_error():
    """`contrastkit recipes | head -1` (found by CI's `| grep -q`): the reader leaving is no error to report."""
    import subprocess
    import sys

    code = "from contrastkit.cli.main import main; raise SystemExit(main(['recipes']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)  # read a little, then go away
    proc.stdout.close()
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""
