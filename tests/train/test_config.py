"""The whole config is validated before any data is read: unknown keys, wrong types, bad values."""

from __future__ import annotations

import pytest

from contrastkit.train.config import ConfigError, config_to_dict, list_recipes, load_config
from tests.train.helpers import tiny_config


def test_every_builtin_recipe_validates():
    names = list_recipes()
    assert "simclr-fashion-mnist" in names
    for name in names:
        if name == "simclr-adapt-fashion-mnist":  # continues a network given on the command line (tested with one
            with pytest.raises(ConfigError, match=r"set backbone\.pretrained=FILE"):  # in test_recipes_train.py)
                load_config(name)
            continue
        config = load_config(name)
        assert config.method["name"]
        if config.method["name"] in ("textpairs", "cpc"):  # texts, sequences: no views
            assert config.views is None
        else:
            assert config.views["recipe"]


def test_overrides_apply_with_types():
    config = load_config(
        "simclr-fashion-mnist", ["trainer.max_epochs=5", "data.path=~/images", "optim.betas=[0.9,0.95]"]
    )
    assert config.trainer.max_epochs == 5
    assert config.data.path == "~/images"
    assert config.optim.betas == (0.9, 0.95)
    config = load_config("simclr-fashion-mnist", ["views.crop_scale=[0.3,1.0]", "method.temperature=0.2"])
    assert config.views["crop_scale"] == (0.3, 1.0)  # back to the tuple the constructor takes
    assert config.method["temperature"] == 0.2


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.max_epoch=5", r"unknown key 'trainer.max_epoch' \(did you mean 'trainer.max_epochs'\?\)"),
        ("datta.name=digits", r"unknown key 'datta' \(did you mean 'data'\?\)"),
        ("method.temprature=0.1", r"unknown key 'method.temprature' \(did you mean 'method.temperature'\?\)"),
        ("views.jiter_strength=0.5", r"did you mean 'views.jitter_strength'"),
        ("trainer.max_epochs=abc", r"trainer.max_epochs: expected int"),
        ("method.temperature=hot", r"method.temperature: expected float"),
        ("data.download=maybe", r"data.download: expected bool"),
        ("views.crop_scale=[0.1,0.2,0.3]", r"views.crop_scale must have 2 values"),
        ("optim.name=lasr", r"optim.name must be one of sgd, adamw, lars.*did you mean 'lars'"),
        ("trainer.precision=fp8", r"trainer.precision must be one of"),
        ("method.name=simclrr", r"unknown method 'simclrr'. Did you mean 'simclr'"),
        ("views.recipe=simcl", r"unknown views recipe 'simcl'. Did you mean 'simclr'"),
        ("data.batch_size=1", r"data.batch_size must be >= 2 \(a batch's other samples are its negatives\)"),
        ("optim.lr=inf", r"optim.lr must be a finite number, got inf"),
        ("optim.weight_decay=nan", r"optim.weight_decay must be a finite number"),
        ("trainer.max_steps=0", r"trainer.max_steps must be -1 \(no limit\) or >= 1"),
        ("trainer.on_nonfinite=ignore", r"trainer.on_nonfinite must be stop or skip"),
        ("method.temperature=0", r"method.temperature must be > 0"),
        ("method.projection_dim=0", r"method.projection_dim must be >= 1"),
        ("name=../../escape", r"name must be a folder name inside out_dir"),
        ("name=/tmp/x", r"name must be a folder name inside out_dir"),
        ("data.channels=2", r"data.channels must be 1 or 3"),
        ("data.image_size=0", r"data.image_size must be >= 1"),
        ("data.decode=gpu", r"data.decode must be one of workers, device, got 'gpu'"),
        ("data.decode=devise", r"data.decode must be one of workers, device.*did you mean 'device'"),
        ("data.num_workers=-1", r"data.num_workers must be >= 0"),
        ("optim.lr=-1", r"optim.lr must be > 0"),
        ("max_epochs", r"must look like section.key=value"),
    ],
)
def test_bad_config_is_refused_with_the_key_and_a_hint(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("simclr-fashion-mnist", [override])


def test_a_yaml_list_is_refused_with_the_files_name(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- method\n- data\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: a config must be a mapping of sections"):
        load_config(path, ["trainer.max_epochs=1"])


def test_overwrite_and_resume_together_are_refused():
    with pytest.raises(ConfigError, match="give one of them"):
        load_config("simclr-fashion-mnist", ["overwrite=true", "resume=last"])


def test_unknown_recipe_and_bad_yaml(tmp_path):
    with pytest.raises(
        ConfigError, match=r"unknown recipe 'simclr-fashon-mnist' \(did you mean 'simclr-fashion-mnist'"
    ):
        load_config("simclr-fashon-mnist")
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not a valid YAML config"):
        load_config(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
    no_method = tmp_path / "no_method.yaml"
    no_method.write_text("trainer:\n  max_epochs: 3\n")
    with pytest.raises(ConfigError, match=r"method\.name is missing"):
        load_config(no_method)


def test_config_is_refused_before_any_data_is_read(tmp_path, monkeypatch):
    import contrastkit.train.data_module as data_module

    def fail(*args, **kwargs):
        raise AssertionError("data was read before the config was validated")

    monkeypatch.setattr(data_module, "load_dataset", fail)
    from contrastkit.cli.main import main

    assert main(["train", "simclr-fashion-mnist", "trainer.max_epoch=1", f"out_dir={tmp_path}"]) == 2


def test_round_trip_through_plain_data(tmp_path):
    config = tiny_config(tmp_path)
    again = load_config(config_to_dict(config))
    assert config_to_dict(again) == config_to_dict(config)


@pytest.mark.parametrize(
    ("method", "views"),
    [("simclr", "simclr"), ("supcon", "simclr"), ("simsiam", "simclr"), ("moco", "mocov2"), ("byol", "byol"),
     ("barlowtwins", "byol"), ("vicreg", "byol"), ("dino", "dino")],
)  # fmt: skip
def test_a_config_without_views_gets_its_methods_paper_views(method, views):
    config = load_config({"method": {"name": method}})
    assert config.views["recipe"] == views


def test_methods_of_tasks_without_views_take_no_views_section():
    assert load_config({"method": {"name": "cpc"}, "backbone": {"name": "sequence_cnn"}}).views is None
    with pytest.raises(ConfigError, match=r"views: method 'cpc' trains on sequences and takes no views section"):
        load_config({"method": {"name": "cpc"}, "views": {"recipe": "simclr"}})


def test_a_method_without_default_views_asks_for_a_views_recipe(monkeypatch):
    from contrastkit.methods import get_method

    monkeypatch.setattr(get_method("simsiam"), "default_views", None)
    with pytest.raises(ConfigError, match=r"views\.recipe: method 'simsiam' has no default views"):
        load_config({"method": {"name": "simsiam"}})


def test_sizes_and_channels_left_unset_are_none_meaning_the_datas_own():
    config = load_config("simclr-fashion-mnist")
    assert config.data.image_size is None and config.data.channels is None
    assert config.views["input_size"] is None and config.views["channels"] is None
    config = load_config("simclr-fashion-mnist", ["views.input_size=24", "data.channels=3"])
    assert config.views["input_size"] == 24 and config.views["channels"] is None and config.data.channels == 3
    again = load_config(config_to_dict(config))  # a saved config.json reads back the same, None included
    assert again.views == config.views and again.data == config.data


def test_an_override_whose_value_yaml_cannot_read_is_named():
    with pytest.raises(ConfigError, match=r"""override 'backbone.name="': the value is not valid YAML"""):
        load_config("simclr-fashion-mnist", ['backbone.name="'])
