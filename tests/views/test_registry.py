import pytest
import torch

from contrastkit.views import SimCLRViews, create_views, get_views, list_views


def test_every_recipe_is_registered_under_its_class_name():
    assert list_views() == ["byol", "clip", "dino", "mocov2", "simclr", "supervised"]
    assert get_views("simclr") is SimCLRViews


def test_create_views_builds_the_recipe_for_the_datas_channels_and_size():
    views = create_views("simclr", channels=1, input_size=28, crop_scale=(0.5, 1.0))
    assert isinstance(views, SimCLRViews)
    assert [(s.channels, s.size) for s in views.specs] == [(1, 28), (1, 28)]
    out = views.batch(torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), torch.Generator().manual_seed(0))
    assert [tuple(v.shape) for v in out] == [(4, 1, 28, 28)] * 2


def test_create_views_refuses_an_unknown_name_with_the_closest_one():
    with pytest.raises(ValueError, match="simclr"):
        create_views("simclrr", channels=3, input_size=32)
