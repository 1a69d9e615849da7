"""The recipes' specs against the papers' numbers (and lightly's SimCLR defaults), their outputs, MultiViews."""

from __future__ import annotations

import ast
import importlib.util
import sys
import types
from pathlib import Path

import PIL.Image
import pytest
import torch

from contrastkit.views import (
    BYOLViews,
    CLIPViews,
    DINOViews,
    MoCoV2Views,
    MultiViews,
    SimCLRViews,
    SupervisedViews,
    ViewSpec,
)
from contrastkit.views.view_spec import CLIP_MEAN, CLIP_STD, IMAGENET_MEAN, IMAGENET_STD

RECIPES = [SimCLRViews, MoCoV2Views, BYOLViews, DINOViews, CLIPViews, SupervisedViews]
COMMON = dict(
    random_crop=True,
    crop_ratio=(3 / 4, 4 / 3),
    blur_sigma=(0.1, 2.0),
    solarize_threshold=0.5,
    channels=3,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)
BYOL_DINO_JITTER = dict(jitter_p=0.8, brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, grayscale_p=0.2)


def assert_fields(spec: ViewSpec, **expected: object) -> None:
    for name, value in expected.items():
        assert getattr(spec, name) == pytest.approx(value), name


def rgb_image(h: int = 64, w: int = 80) -> PIL.Image.Image:
    return PIL.Image.fromarray(torch.randint(0, 256, (h, w, 3), dtype=torch.uint8).numpy())


def test_simclr_matches_the_paper() -> None:
    views = SimCLRViews()
    assert len(views) == 2 and views.specs[0] == views.specs[1]
    assert_fields(
        views.specs[0],
        **COMMON,
        size=224,
        crop_scale=(0.08, 1.0),
        hflip_p=0.5,
        jitter_p=0.8,
        brightness=0.8,
        contrast=0.8,
        saturation=0.8,
        hue=0.2,
        grayscale_p=0.2,
        blur_p=0.5,
        blur_kernel=23,
        solarize_p=0.0,
    )
    assert_fields(SimCLRViews(jitter_strength=0.5, num_views=3).specs[2], brightness=0.4, saturation=0.4, hue=0.1)
    assert SimCLRViews(input_size=96).specs[0].blur_kernel == 9  # 10% of the side, odd


def lightly_simclr_defaults() -> dict[str, object]:
    """SimCLRViewTransform's keyword defaults, read from lightly's source (lightly itself is not imported)."""
    spec = importlib.util.find_spec("lightly")
    assert spec is not None and spec.submodule_search_locations, "lightly (a test dependency) must be installed"
    root = Path(next(iter(spec.submodule_search_locations))) / "transforms"
    tree = ast.parse((root / "simclr_transform.py").read_text())
    init = next(
        n
        for c in tree.body
        if isinstance(c, ast.ClassDef) and c.name == "SimCLRViewTransform"
        for n in c.body
        if isinstance(n, ast.FunctionDef) and n.name == "__init__"
    )
    names = [a.arg for a in init.args.args[-len(init.args.defaults) :]]
    defaults = {k: d for k, d in zip(names, init.args.defaults, strict=True) if k != "normalize"}
    out = {k: ast.literal_eval(d) for k, d in defaults.items()}
    out["normalize"] = ast.literal_eval(ast.parse((root / "utils.py").read_text()).body[0].value)
    return out


def test_simclr_matches_lightly_where_they_agree() -> None:
    lightly, spec = lightly_simclr_defaults(), SimCLRViews(input_size=224).specs[0]
    s = lightly["cj_strength"]
    assert spec.size == lightly["input_size"] and spec.crop_scale == (lightly["min_scale"], 1.0)
    assert (spec.brightness, spec.contrast, spec.saturation, spec.hue) == pytest.approx(
        (s * lightly["cj_bright"], s * lightly["cj_contrast"], s * lightly["cj_sat"], s * lightly["cj_hue"])
    )
    assert (spec.jitter_p, spec.grayscale_p, spec.blur_p, spec.hflip_p) == pytest.approx(
        (lightly["cj_prob"], lightly["random_gray_scale"], lightly["gaussian_blur"], lightly["hf_prob"])
    )
    assert spec.blur_sigma == pytest.approx(lightly["sigmas"])
    assert lightly["vf_prob"] == 0 and lightly["rr_prob"] == 0  # lightly's extras, off by default
    assert spec.mean == pytest.approx(lightly["normalize"]["mean"]) and spec.std == pytest.approx(
        lightly["normalize"]["std"]
    )


def test_moco_v2_matches_the_paper() -> None:
    views = MoCoV2Views()
    assert len(views) == 2 and views.specs[0] == views.specs[1]
    assert_fields(
        views.specs[0],
        **COMMON,
        size=224,
        crop_scale=(0.2, 1.0),
        hflip_p=0.5,
        jitter_p=0.8,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        grayscale_p=0.2,
        blur_p=0.5,
        blur_kernel=23,
        solarize_p=0.0,
    )


def test_byol_matches_table_6() -> None:
    first, second = BYOLViews().specs
    for spec, blur_p, solarize_p in ((first, 1.0, 0.0), (second, 0.1, 0.2)):
        assert_fields(
            spec,
            **COMMON,
            **BYOL_DINO_JITTER,
            size=224,
            crop_scale=(0.08, 1.0),
            hflip_p=0.5,
            blur_kernel=23,
            blur_p=blur_p,
            solarize_p=solarize_p,
        )


def test_dino_matches_the_paper_global_views_first() -> None:
    views = DINOViews()
    assert len(views) == 10 and views.num_global == 2 and views.num_local == 8
    g1, g2, *local = views.specs
    for spec, blur_p, solarize_p in ((g1, 1.0, 0.0), (g2, 0.1, 0.2)):
        assert_fields(
            spec,
            **COMMON,
            **BYOL_DINO_JITTER,
            size=224,
            crop_scale=(0.4, 1.0),
            hflip_p=0.5,
            blur_p=blur_p,
            solarize_p=solarize_p,
        )
    for spec in local:
        assert_fields(
            spec, **COMMON, **BYOL_DINO_JITTER, size=96, crop_scale=(0.05, 0.4), hflip_p=0.5, blur_p=0.5, solarize_p=0.0
        )
    out = views(rgb_image(256, 300))
    assert [tuple(v.shape) for v in out] == [(3, 224, 224)] * 2 + [(3, 96, 96)] * 8


@pytest.mark.parametrize(("input_size", "local_size"), [(32, 14), (28, 12), (96, 41)])
def test_dino_local_crops_scale_with_the_input(input_size: int, local_size: int) -> None:
    views = DINOViews(input_size=input_size, num_local=3)
    assert [s.size for s in views.specs] == [input_size] * 2 + [local_size] * 3
    assert [tuple(v.shape[-2:]) for v in views(rgb_image(40, 40))][1:3] == [(input_size,) * 2, (local_size,) * 2]


def test_clip_is_one_deterministic_view() -> None:
    views = CLIPViews()
    assert len(views) == 1
    assert_fields(
        views.specs[0],
        size=224,
        random_crop=False,
        resize=224,
        hflip_p=0.0,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=0.0,
        solarize_p=0.0,
        mean=CLIP_MEAN,
        std=CLIP_STD,
    )
    image = rgb_image(240, 320)
    assert torch.equal(views(image)[0], views(image)[0])


def test_supervised_train_and_eval() -> None:
    train, evaluate = SupervisedViews().specs[0], SupervisedViews(train=False).specs[0]
    assert_fields(
        train,
        **COMMON,
        size=224,
        crop_scale=(0.08, 1.0),
        hflip_p=0.5,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=0.0,
        solarize_p=0.0,
    )
    assert_fields(evaluate, size=224, random_crop=False, resize=256, hflip_p=0.0, jitter_p=0.0, blur_p=0.0)
    assert SupervisedViews(input_size=32, train=False).specs[0].resize == 32  # small: the whole image


@pytest.mark.parametrize("recipe", RECIPES)
def test_grayscale_small_recipes_have_one_channel_and_no_colour_or_blur(recipe: type[MultiViews]) -> None:
    views = recipe(input_size=28, channels=1)
    for spec in views.specs:
        assert_fields(spec, channels=1, saturation=0.0, hue=0.0, grayscale_p=0.0, blur_p=0.0, mean=(0.5,), std=(0.5,))
    out = views(rgb_image(28, 28))
    assert all(v.shape[0] == 1 and v.dtype == torch.float32 for v in out)
    assert all(tuple(v.shape[1:]) == (s.size, s.size) for v, s in zip(out, views.specs, strict=True))


def test_blur_is_kept_for_large_grayscale_and_when_asked_for_small_images() -> None:
    assert SimCLRViews(channels=1).specs[0].blur_p == 0.5 and BYOLViews(channels=1).specs[0].blur_p == 1.0
    assert SimCLRViews(input_size=32, blur_p=0.5).specs[0].blur_p == 0.5
    assert DINOViews(input_size=32, local_blur_p=0.5).specs[-1].blur_p == 0.5


def test_torch_manual_seed_reproduces_all_views() -> None:
    views, image = BYOLViews(input_size=48), rgb_image()
    torch.manual_seed(7)
    first = views(image)
    torch.manual_seed(7)
    again = views(image)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])


def test_multi_views_container() -> None:
    spec = ViewSpec(size=8, blur_p=0.0)
    views = MultiViews([spec, spec, spec.with_changes(size=4)])
    assert len(views) == 3 and views.specs == (spec, spec, spec.with_changes(size=4))
    assert "[0-1] ViewSpec(size=8, blur_p=0.0)" in repr(views) and "[2] ViewSpec(size=4" in repr(views)
    assert "[2-9] ViewSpec(size=96" in repr(DINOViews())
    with pytest.raises(ValueError, match="at least one"):
        MultiViews([])
    with pytest.raises(TypeError, match=r"specs\[1\]"):
        MultiViews([spec, "view"])


def test_batch_calls_apply_view_per_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    fake = types.ModuleType("contrastkit.views.batched")
    fake.apply_view = lambda spec, images, generator=None: calls.append((spec, images, generator)) or spec.size
    monkeypatch.setitem(sys.modules, "contrastkit.views.batched", fake)
    views, images, generator = DINOViews(input_size=32, num_local=2), torch.zeros(2, 3, 8, 8), torch.Generator()
    assert views.batch(images, generator) == [32, 32, 14, 14]
    assert [c[0] for c in calls] == list(views.specs) and all(c[1] is images and c[2] is generator for c in calls)


def test_batch_shapes_match_the_per_sample_views() -> None:
    views = DINOViews(input_size=32, channels=1, num_local=2)
    images = torch.randint(0, 256, (3, 3, 36, 40), dtype=torch.uint8)
    batched = views.batch(images, torch.Generator().manual_seed(0))
    single = views(images[0])
    assert [tuple(b.shape) for b in batched] == [(3, *s.shape) for s in single]
