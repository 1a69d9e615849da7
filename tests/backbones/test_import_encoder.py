"""import-encoder: models built with their own library, saved in its format, imported, and compared output for
output with the source library on the same inputs."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

import contrastkit
from contrastkit.backbones.import_encoder import ImportSourceError, import_encoder
from contrastkit.cli.main import main


def test_torchvision_resnet_state_dict(tmp_path):
    import torchvision

    torch.manual_seed(0)
    source = torchvision.models.resnet18().eval()
    torch.save(source.state_dict(), tmp_path / "resnet18.pth")  # with its fc: dropped on import
    path = import_encoder("torchvision:resnet18", tmp_path / "enc.safetensors", str(tmp_path / "resnet18.pth"))
    encoder = contrastkit.load_encoder(path)
    x = torch.randn(2, 3, 64, 64)
    source.fc = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), source(x))
    info = encoder.encoder_info
    assert info["feature_dim"] == 512 and info["input_size"] == 224 and info["mean"] == [0.485, 0.456, 0.406]


def test_torchvision_vit_safetensors(tmp_path):
    import torchvision
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = torchvision.models.vit_b_16().eval()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "vit.safetensors")
    encoder = contrastkit.load_encoder(
        import_encoder("torchvision:vit_b_16", tmp_path / "enc.safetensors", str(tmp_path / "vit.safetensors"))
    )
    x = torch.randn(1, 3, 224, 224)
    source.heads = torch.nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(encoder(x), source(x))
    assert encoder.feature_dim == 768


def test_weights_that_do_not_fit_are_refused_by_key_and_pickles_are_not_run(tmp_path):
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ImportSourceError, match=r"missing: layer1\.2\..*unexpected|missing: .*layer1\.2"):
        import_encoder("torchvision:resnet34", tmp_path / "enc.safetensors", str(tmp_path / "r18.pth"))
    assert not (tmp_path / "enc.safetensors").exists()
    torch.save({"weights": torch.nn.Linear(2, 2)}, tmp_path / "module.pth")  # a pickled module, not tensors
    with pytest.raises(ImportSourceError, match="not a readable weights file"):
        import_encoder("torchvision:resnet18", tmp_path / "enc.safetensors", str(tmp_path / "module.pth"))


def test_timm_model(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = timm.create_model("vit_tiny_patch16_224", pretrained=False).eval()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, tmp_path / "model.safetensors")
    path = import_encoder(
        "timm:vit_tiny_patch16_224", tmp_path / "enc.safetensors", str(tmp_path / "model.safetensors")
    )
    encoder = contrastkit.load_encoder(path)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = source.forward_head(source.forward_features(x), pre_logits=True)  # timm's own pooled features
        torch.testing.assert_close(encoder(x), expected)
    config = timm.data.resolve_data_config({}, model=source)
    assert encoder.encoder_info["mean"] == list(config["mean"]) and encoder.encoder_info["input_size"] == 224


TINY_OPEN_CLIP = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 64, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
CLASSES = ["cat", "dog", "car", "tree"]


def test_open_clip_towers_and_zero_shot(tmp_path):
    import open_clip

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}))
    torch.manual_seed(0)
    source = open_clip.create_model(f"local-dir:{folder}", load_weights=False).eval()
    torch.save(source.state_dict(), tmp_path / "tiny.pt")
    path = import_encoder(f"open_clip:local-dir:{folder}", tmp_path / "enc.safetensors", str(tmp_path / "tiny.pt"))
    encoder = contrastkit.load_encoder(path)
    images = torch.randn(6, 3, 32, 32)
    tokens = open_clip.get_tokenizer(f"local-dir:{folder}")(CLASSES)
    with torch.no_grad():
        image_ref = F.normalize(source.encode_image(images), dim=-1)
        text_ref = F.normalize(source.encode_text(tokens), dim=-1)
        torch.testing.assert_close(encoder(images), image_ref)
        torch.testing.assert_close(encoder.encode_text(CLASSES), text_ref)
    from contrastkit.eval.zero_shot import zero_shot

    labels = torch.arange(6) % 4
    result = zero_shot(encoder, image_ref, CLASSES, templates=["{}"], labels=labels)
    assert torch.equal(result.predictions, (image_ref @ text_ref.T).argmax(1))  # open_clip's own prediction
    assert encoder.encoder_info["kind"] == "dual" and encoder.encoder_info["input_size"] == 32


def _tiny_clip_tokenizer(folder):
    from transformers import CLIPTokenizer

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<|unk|>": 2}
    for c in letters:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token="<|unk|>")
    tokenizer.save_pretrained(folder)
    return tokenizer, len(vocab)


def test_hf_clip_folder_towers_and_zero_shot(tmp_path):
    from transformers import CLIPConfig, CLIPModel

    folder = tmp_path / "clip"
    folder.mkdir()
    tokenizer, vocab_size = _tiny_clip_tokenizer(folder)
    config = CLIPConfig(
        text_config={"vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                     "num_attention_heads": 2, "max_position_embeddings": 32, "bos_token_id": 0, "eos_token_id": 1,
                     "pad_token_id": 1},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                       "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    source = CLIPModel(config).eval()
    source.save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(
        json.dumps({"image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "crop_size": 32, "resample": 3})
    )
    encoder = contrastkit.load_encoder(import_encoder(f"hf:{folder}", tmp_path / "enc.safetensors"))
    images = torch.randn(5, 3, 32, 32)
    inputs = tokenizer(CLASSES, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = source(pixel_values=images, **inputs)
        torch.testing.assert_close(encoder(images), F.normalize(out.image_embeds, dim=-1))
        torch.testing.assert_close(encoder.encode_text(CLASSES), F.normalize(out.text_embeds, dim=-1))
        from contrastkit.eval.zero_shot import zero_shot

        result = zero_shot(encoder, encoder(images), CLASSES, templates=["{}"], labels=torch.arange(5) % 4)
    assert torch.equal(result.predictions, out.logits_per_image.argmax(1))  # transformers' own prediction
    info = encoder.encoder_info
    assert (info["input_size"], info["mean"], info["std"]) == (32, [0.5] * 3, [0.25] * 3)


def test_hf_vision_folder(tmp_path):
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                       image_size=32, patch_size=8)  # fmt: skip
    torch.manual_seed(0)
    source = ViTModel(config).eval()
    source.save_pretrained(tmp_path / "vit")
    encoder = contrastkit.load_encoder(import_encoder(f"hf:{tmp_path / 'vit'}", tmp_path / "enc.safetensors"))
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(encoder(images), source(pixel_values=images).pooler_output)
    assert encoder.feature_dim == 32 and encoder.encoder_info["input_size"] == 32


def test_cli_import_encoder_then_embed(tmp_path, capsys):
    import torchvision

    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "r.pth")
    out = tmp_path / "enc.safetensors"
    assert (
        main(["import-encoder", "torchvision:resnet18", "--weights", str(tmp_path / "r.pth"), "--out", str(out)]) == 0
    )
    assert "wrote" in capsys.readouterr().out
    assert contrastkit.load_encoder(out).feature_dim == 512
    assert main(["import-encoder", "keras:resnet", "--weights", "x", "--out", str(tmp_path / "x.safetensors")]) == 2
    assert "LIBRARY:NAME" in capsys.readouterr().err
    assert main(["import-encoder", "timm:resnet18", "--out", str(tmp_path / "y.safetensors")]) == 2
    assert "--weights" in capsys.readouterr().err


def test_every_command_takes_an_imported_image_text_encoder(tmp_path, capsys):
    import open_clip

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": TINY_OPEN_CLIP}))
    torch.manual_seed(0)
    torch.save(open_clip.create_model(f"local-dir:{folder}", load_weights=False).state_dict(), tmp_path / "w.pt")
    enc = str(tmp_path / "enc.safetensors")
    assert (
        main(["import-encoder", f"open_clip:local-dir:{folder}", "--weights", str(tmp_path / "w.pt"), "--out", enc])
        == 0
    )
    assert main(["zeroshot", enc, "--data", "digits", "--limit", "40"]) == 0
    assert "top-1" in capsys.readouterr().out
    assert main(["eval", enc, "--data", "digits", "--train-size", "200", "--test-size", "60"]) == 0
    assert "random init" in capsys.readouterr().out
    emb = str(tmp_path / "emb")
    assert main(["embed", enc, "digits", "--split", "test", "--out", emb, "--quiet", "--num-workers", "0"]) == 0
    assert main(["index", "build", emb, "--out", str(tmp_path / "g.faiss")]) == 0
    capsys.readouterr()
    assert main(["search", str(tmp_path / "g.faiss"), "--text", "a seven", "-k", "3"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 3
    args = ["finetune", enc, "--data", "digits", "--labels-per-class", "2", "--epochs", "1", "--no-scratch"]
    assert main([*args, "--out-dir", str(tmp_path), "--name", "ft"]) == 0
    assert "zero-shot (class names only)" in capsys.readouterr().out
