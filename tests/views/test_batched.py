"""The batched view engine against torchvision: op by op, distribution by distribution, and end to end."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision.transforms.v2.functional as TF
from scipy import stats
from torchvision.transforms import v2

import contrastkit.views.batched as batched
from contrastkit.views import batched_ops as ops
from contrastkit.views.batched import apply_view, render_view, sample_crop_boxes, sample_view_params
from contrastkit.views.view_spec import ViewSpec

N_DRAWS = 20_000
P_MIN = 1e-3  # KS / chi-square: same distribution accepted above this, a wrong one rejected below it


def _images(batch: int, channels: int = 3, height: int = 17, width: int = 19, seed: int = 0) -> torch.Tensor:
    """Float images in [0, 1] with flat and two-equal-channel regions (the edge cases of the HSV conversion)."""
    x = torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed))
    if channels == 3:
        x[:, :, :3] = x[:, :1, :3]  # gray pixels
        x[:, 1, 5:7] = x[:, 0, 5:7]  # red == green
        x[:, 2, 8:9] = x[:, 1, 8:9]  # green == blue
        x[:, :, 10, :4] = torch.tensor([1.0, 0.0, 0.0])[:, None]  # saturated pixels
    return x


def _within_4_sigma(hits: torch.Tensor, p: float) -> bool:
    n = hits.numel()
    return abs(float(hits.float().sum()) - n * p) <= 4 * math.sqrt(n * p * (1 - p)) + 1e-9


# ------------------------------------------------------------------------------ ops, sample by sample


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    ("op", "reference", "low", "high"),
    [
        (ops.batched_adjust_brightness, TF.adjust_brightness, 0.0, 2.0),
        (ops.batched_adjust_contrast, TF.adjust_contrast, 0.0, 2.0),
        (ops.batched_adjust_saturation, TF.adjust_saturation, 0.0, 2.0),
        (ops.batched_adjust_hue, TF.adjust_hue, -0.5, 0.5),
    ],
)
def test_colour_ops_match_torchvision(op, reference, low, high, channels):
    x = _images(8, channels)
    factors = torch.linspace(low, high, 8)
    out = op(x, factors)
    expected = torch.stack([reference(x[i], float(factors[i])) for i in range(8)])
    torch.testing.assert_close(out, expected, atol=3e-6, rtol=0)
    assert not torch.equal(out, x) or channels == 1  # the op did something (and did not modify its input)
    torch.testing.assert_close(x, _images(8, channels))


def test_grayscale_and_solarize_and_flip_match_torchvision():
    x = _images(6)
    mask = torch.tensor([True, False, True, True, False, False])
    torch.testing.assert_close(ops.batched_rgb_to_grayscale(x), TF.rgb_to_grayscale(x), atol=1e-7, rtol=0)
    gray = ops.batched_grayscale(x, mask)
    solar = ops.batched_solarize(x, 0.4, mask)
    flipped = ops.batched_hflip(x, mask)
    for i in range(6):
        torch.testing.assert_close(gray[i], TF.rgb_to_grayscale(x[i], 3) if mask[i] else x[i], atol=1e-7, rtol=0)
        torch.testing.assert_close(solar[i], TF.solarize(x[i], 0.4) if mask[i] else x[i], atol=0, rtol=0)
        torch.testing.assert_close(flipped[i], TF.horizontal_flip(x[i]) if mask[i] else x[i], atol=0, rtol=0)


@pytest.mark.parametrize("kernel", [3, 9, 23])
def test_gaussian_blur_matches_torchvision(kernel):
    x = _images(5, height=24, width=30)
    sigma = torch.tensor([0.1, 0.5, 1.0, 1.7, 2.0])
    out = ops.batched_gaussian_blur(x, kernel, sigma)
    for i in range(5):
        expected = TF.gaussian_blur(x[i], [kernel, kernel], [float(sigma[i])] * 2)
        torch.testing.assert_close(out[i], expected, atol=2e-6, rtol=0)


def _boxes(sizes: list[tuple[int, int]], height: int, width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    rows = []
    for h, w in sizes:
        top = int(torch.randint(0, height - h + 1, (1,), generator=g))
        left = int(torch.randint(0, width - w + 1, (1,), generator=g))
        rows.append((top, left, h, w))
    return torch.tensor(rows)


def test_resized_crop_upscaling_matches_bilinear():
    """Crops no larger than the view: the grid_sample path, bilinear (antialias is a no-op when upscaling)."""
    x = _images(5, height=30, width=40)
    boxes = _boxes([(7, 9), (16, 16), (3, 16), (16, 2), (12, 16)], 30, 40)
    flip = torch.tensor([False, True, False, True, False])
    out = ops.batched_resized_crop(x, boxes, 16, flip)
    for i in range(5):
        for antialias in (False, True):
            expected = TF.resized_crop(x[i], *boxes[i].tolist(), [16, 16], antialias=antialias)
            expected = TF.horizontal_flip(expected) if flip[i] else expected
            torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)


def test_resized_crop_downscaling_matches_antialias():
    """A batch with downscaled crops takes the matmul path: torchvision's antialias=True weights, exactly."""
    x = _images(5, height=60, width=50)
    boxes = _boxes([(60, 50), (40, 13), (9, 9), (20, 50), (55, 30)], 60, 50)
    flip = torch.tensor([True, False, False, True, False])
    out = ops.batched_resized_crop(x, boxes, 12, flip)
    for i in range(5):
        expected = TF.resized_crop(x[i], *boxes[i].tolist(), [12, 12], antialias=True)
        expected = TF.horizontal_flip(expected) if flip[i] else expected
        torch.testing.assert_close(out[i], expected, atol=1e-5, rtol=0)
    aliased = TF.resized_crop(x[0], *boxes[0].tolist(), [12, 12], antialias=False)
    assert (TF.horizontal_flip(aliased) - out[0]).abs().max() > 1e-2  # the antialiasing is real


# ----------------------------------------------------------------------------- parameter distributions


def _torchvision_boxes(scale, ratio, height: int, width: int, n: int) -> torch.Tensor:
    crop = v2.RandomResizedCrop(8, scale=scale, ratio=ratio)
    image = [torch.empty(3, height, width)]
    rows = [crop.make_params(image) for _ in range(n)]
    return torch.tensor([[p["top"], p["left"], p["height"], p["width"]] for p in rows], dtype=torch.float64)


def _crop_stats(boxes: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    boxes = boxes.to(torch.float64)
    top, left, h, w = boxes.unbind(1)
    return {
        "area": h * w / (height * width),
        "log_ratio": torch.log(w / h),
        "left": (left + 0.5) / (width - w + 1),  # position within the free range, in (0, 1)
        "top": (top + 0.5) / (height - h + 1),
    }


def test_crop_boxes_match_torchvision_distribution():
    height, width, scale, ratio = 120, 90, (0.08, 1.0), (3 / 4, 4 / 3)
    reference = _crop_stats(_torchvision_boxes(scale, ratio, height, width, N_DRAWS), height, width)
    g = torch.Generator().manual_seed(0)
    ours = _crop_stats(sample_crop_boxes((scale, ratio), N_DRAWS, height, width, g), height, width)
    for name in ("area", "log_ratio", "left", "top"):
        assert stats.ks_2samp(ours[name].numpy(), reference[name].numpy()).pvalue > P_MIN, name
    # the test has power: slightly wrong ranges are rejected
    for wrong, name in ((((0.12, 1.0), ratio), "area"), ((scale, (0.7, 1.4)), "log_ratio")):
        wrong_stats = _crop_stats(sample_crop_boxes(wrong, N_DRAWS, height, width, g), height, width)
        assert stats.ks_2samp(wrong_stats[name].numpy(), reference[name].numpy()).pvalue < P_MIN, wrong


def test_crop_boxes_rejection_and_fallback_match_torchvision():
    # a 12 x 90 strip: most attempts do not fit; (1, 1) scale never fits and falls back to the clamped centre crop
    for scale, ratio in (((0.3, 1.0), (0.5, 2.0)), ((1.0, 1.0), (3 / 4, 4 / 3)), ((1.0, 1.0), (2.0, 3.0))):
        ours = sample_crop_boxes((scale, ratio), 4000, 12, 90, torch.Generator().manual_seed(0))
        ref = _torchvision_boxes(scale, ratio, 12, 90, 4000)
        assert torch.all((ours[:, 2] <= 12) & (ours[:, 3] <= 90) & (ours[:, :2] >= 0).all(1))
        assert torch.all(ours[:, 0] + ours[:, 2] <= 12) and torch.all(ours[:, 1] + ours[:, 3] <= 90)
        if scale == (1.0, 1.0):
            assert torch.equal(ours.unique(dim=0).double(), ref.unique(dim=0)), ratio  # the one fallback box
        else:
            for name, v in _crop_stats(ours, 12, 90).items():
                assert stats.ks_2samp(v.numpy(), _crop_stats(ref, 12, 90)[name].numpy()).pvalue > P_MIN, name


def test_view_params_rates_and_ranges():
    spec = ViewSpec(
        size=8, hflip_p=0.3, jitter_p=0.7, grayscale_p=0.2, blur_p=0.45, solarize_p=0.1,
        brightness=1.5, contrast=0.4, saturation=0.9, hue=0.2, blur_sigma=(0.2, 1.5),
    )  # fmt: skip
    p = sample_view_params(spec, N_DRAWS, 32, 32, torch.Generator().manual_seed(0))
    for hits, rate in ((p.flip, 0.3), (p.jitter, 0.7), (p.grayscale, 0.2), (p.blur, 0.45), (p.solarize, 0.1)):
        assert _within_4_sigma(hits, rate), rate
    assert not _within_4_sigma(p.flip, 0.32)  # 4 sigma is about 0.013 at this n: the check has power
    ranges = ((0.0, 2.5), (0.6, 1.4), (0.1, 1.9), (-0.2, 0.2))  # brightness 1 - 1.5 is clipped at 0, as torchvision
    for column, (lo, hi) in enumerate(ranges):
        f = p.jitter_factors[:, column].numpy()
        assert stats.kstest(f, "uniform", args=(lo, hi - lo)).pvalue > P_MIN, column
        assert stats.kstest(f, "uniform", args=(lo + 0.03 * (hi - lo), hi - lo)).pvalue < P_MIN, column
    assert stats.kstest(p.blur_sigma.numpy(), "uniform", args=(0.2, 1.3)).pvalue > P_MIN
    # jitter order: a uniform random permutation of the four ops, as torch.randperm(4) in ColorJitter
    assert torch.equal(p.jitter_order.sort(dim=1).values, torch.arange(4).expand(N_DRAWS, 4))
    codes = (p.jitter_order * torch.tensor([64, 16, 4, 1])).sum(1)
    counts = torch.unique(codes, return_counts=True)[1]
    assert len(counts) == 24 and stats.chisquare(counts.numpy()).pvalue > P_MIN


def _reference_view(spec: ViewSpec, image: torch.Tensor, p, i: int) -> torch.Tensor:
    """Sample ``i`` of a batched view recomputed with torchvision.transforms.v2.functional, op by op."""
    x = image
    if x.shape[0] == 1 and spec.channels == 3:
        x = x.repeat(3, 1, 1)
    elif x.shape[0] == 3 and spec.channels == 1:
        x = TF.rgb_to_grayscale(x)
    if p.boxes is not None:
        x = TF.resized_crop(x, *p.boxes[i].tolist(), [spec.size, spec.size], antialias=True)
    else:
        x = TF.center_crop(TF.resize(x, [spec.resize or spec.size], antialias=True), [spec.size, spec.size])
    if p.flip[i] and spec.hflip_p > 0:
        x = TF.horizontal_flip(x)
    if p.jitter[i] and spec.jitter_p > 0:
        fns = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
        strengths = (spec.brightness, spec.contrast, spec.saturation, spec.hue)
        for op in p.jitter_order[i].tolist():
            if strengths[op] > 0:
                x = fns[op](x, float(p.jitter_factors[i, op]))
    if p.grayscale[i] and spec.grayscale_p > 0 and spec.channels == 3:
        x = TF.rgb_to_grayscale(x, 3)
    if p.blur[i] and spec.blur_p > 0:
        x = TF.gaussian_blur(x, [spec.blur_kernel] * 2, [float(p.blur_sigma[i])] * 2)
    if p.solarize[i] and spec.solarize_p > 0:
        x = TF.solarize(x, spec.solarize_threshold)
    return TF.normalize(x, list(spec.mean), list(spec.std))


SPECS = {
    "upscale": ViewSpec(size=20, blur_kernel=5, solarize_p=0.3, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2),
    "downscale": ViewSpec(size=9, blur_kernel=3, hflip_p=0.5, jitter_p=0.6, grayscale_p=0.4, blur_p=0.7),
    "centre": ViewSpec(size=12, random_crop=False, resize=14, solarize_p=0.5, blur_kernel=3),
    "gray": ViewSpec(size=12, channels=1, mean=(0.5,), std=(0.25,), blur_kernel=3),
}


@pytest.mark.parametrize("name", list(SPECS))
@pytest.mark.parametrize("chunk", [1 << 21, 700])  # 700 floats: many chunks, jitter groups split across them
def test_render_view_equals_torchvision_op_by_op(name, chunk, monkeypatch):
    monkeypatch.setattr(batched, "CPU_CHUNK_ELEMENTS", chunk)
    spec = SPECS[name]
    images = (_images(48, height=22, width=26, seed=3) * 255).round().to(torch.uint8)
    params = sample_view_params(spec, 48, 22, 26, torch.Generator().manual_seed(5))
    out = render_view(spec, images, params)
    assert out.shape == (48, spec.channels, spec.size, spec.size) and out.dtype == torch.float32
    floats = images.float() / 255
    for i in range(48):
        torch.testing.assert_close(out[i], _reference_view(spec, floats[i], params, i), atol=5e-5, rtol=0)


def _torchvision_pipeline(s: ViewSpec) -> v2.Compose:
    """The spec as a plain torchvision v2 per-sample pipeline (for float images in [0, 1])."""
    jitter = v2.ColorJitter(s.brightness, s.contrast, s.saturation, s.hue)
    return v2.Compose([
        v2.RandomResizedCrop(s.size, scale=s.crop_scale, ratio=s.crop_ratio, antialias=True),
        v2.RandomHorizontalFlip(s.hflip_p),
        v2.RandomApply([jitter], p=s.jitter_p),
        v2.RandomGrayscale(s.grayscale_p),
        v2.RandomApply([v2.GaussianBlur(s.blur_kernel, s.blur_sigma)], p=s.blur_p),
        v2.RandomSolarize(s.solarize_threshold, p=s.solarize_p),
        v2.Normalize(list(s.mean), list(s.std)),
    ])  # fmt: skip


def _view_summary(views: torch.Tensor) -> dict[str, torch.Tensor]:
    red = views[:, 0]
    return {
        "red": red.mean((1, 2)),  # brightness, crop position
        "span": red.amax((1, 2)) - red.amin((1, 2)),  # crop size (the red channel is a horizontal ramp), contrast
        "std": views.std((1, 2, 3)),
        "colour": (red - views[:, 1]).abs().mean((1, 2)),  # saturation, hue, grayscale
    }


@pytest.mark.parametrize("reference", ["torchvision", "build_transform"])
def test_batched_and_per_sample_recipes_draw_the_same_views(reference):
    """End to end: statistics of 1200 views of one image, batched vs a per-sample pipeline, two-sample KS.

    "torchvision": a plain v2 pipeline on the float image; "build_transform": contrastkit's per-sample engine on
    the uint8 image (which rounds to 1/255 between steps).
    """
    spec = ViewSpec(size=12, brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, blur_kernel=3, solarize_p=0.2)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 24), torch.linspace(0, 1, 24), indexing="ij")
    image = torch.stack([xx, yy, (xx - yy).abs()])  # (3, 24, 24) colour gradients
    if reference == "build_transform":
        from contrastkit.views.sample_pipeline import build_transform  # a broken import fails, never skips

        image = (image * 255).round().to(torch.uint8)
        pipeline = build_transform(spec)
    else:
        pipeline = _torchvision_pipeline(spec)
    n = 1200
    expected = _view_summary(torch.stack([pipeline(image) for _ in range(n)]))
    ours = _view_summary(apply_view(spec, image.expand(n, 3, 24, 24), torch.Generator().manual_seed(0)))
    for key in ours:
        assert stats.ks_2samp(ours[key].numpy(), expected[key].numpy()).pvalue > P_MIN, key
    if reference == "torchvision":
        for wrong in (dict(brightness=0.4), dict(grayscale_p=0.45)):  # the test has power (crops: tested above)
            views = _view_summary(apply_view(spec.with_changes(**wrong), image.expand(n, 3, 24, 24)))
            pvalues = [stats.ks_2samp(views[key].numpy(), expected[key].numpy()).pvalue for key in views]
            assert min(pvalues) < P_MIN, wrong


# -------------------------------------------------------------------------------------------- end to end


def test_apply_view_shape_dtype_reproducible_and_per_sample():
    spec = ViewSpec(size=16, blur_kernel=3)
    images = torch.randint(0, 256, (1, 3, 28, 28), dtype=torch.uint8).expand(32, 3, 28, 28)
    a = apply_view(spec, images, torch.Generator().manual_seed(7))
    b = apply_view(spec, images, torch.Generator().manual_seed(7))
    c = apply_view(spec, images, torch.Generator().manual_seed(8))
    assert a.shape == (32, 3, 16, 16) and a.dtype == torch.float32 and a.device == images.device
    assert torch.equal(a, b) and not torch.equal(a, c)
    flat = a.flatten(1)
    assert torch.cdist(flat, flat).add(torch.eye(32) * 1e9).min() > 1e-3  # same image, 32 different views
    torch.manual_seed(3)
    d = apply_view(spec, images)
    torch.manual_seed(3)
    assert torch.equal(d, apply_view(spec, images))  # generator None: the global CPU generator


def test_deterministic_spec_is_plain_resize_and_normalise():
    off = dict(random_crop=False, hflip_p=0.0, jitter_p=0.0, grayscale_p=0.0, blur_p=0.0, solarize_p=0.0)
    images = torch.randint(0, 256, (4, 3, 30, 40), dtype=torch.uint8)
    floats = images.float() / 255
    # downscale, resize larger than the crop, zero padding (downscaled), zero padding (upscaled: grid_sample path)
    for size, resize in ((16, None), (16, 20), (24, 12), (40, 36)):
        spec = ViewSpec(size=size, resize=resize, **off)
        resized = TF.center_crop(TF.resize(floats, [resize or size], antialias=True), [size, size])
        expected = TF.normalize(resized, list(spec.mean), list(spec.std))
        torch.testing.assert_close(apply_view(spec, images), expected, atol=2e-5, rtol=0)
    square = ViewSpec(size=40, **off)  # upscaling a 30 x 30 square: bilinear, same with or without antialias
    x = images[..., :30, 5:35]
    expected = TF.normalize(TF.resize(x.float() / 255, [40, 40], antialias=False), list(square.mean), list(square.std))
    torch.testing.assert_close(apply_view(square, x), expected, atol=2e-5, rtol=0)


def test_channel_fixups_and_float_input():
    images = torch.randint(0, 256, (6, 1, 20, 20), dtype=torch.uint8)
    rgb, gray = ViewSpec(size=12, blur_kernel=3), ViewSpec(size=12, channels=1, mean=(0.5,), std=(0.5,), blur_kernel=3)
    g = torch.Generator()
    one = apply_view(rgb, images, g.manual_seed(0))
    three = apply_view(rgb, images.expand(6, 3, 20, 20), g.manual_seed(0))
    torch.testing.assert_close(one, three, atol=1e-5, rtol=0)  # 1 -> 3 channels: repeat
    colour = torch.randint(0, 256, (6, 3, 20, 20), dtype=torch.uint8)
    luma = apply_view(gray, colour, g.manual_seed(1))
    assert luma.shape == (6, 1, 12, 12)
    params = sample_view_params(gray, 6, 20, 20, g.manual_seed(1))
    for i in range(6):  # 3 -> 1 channel: luma, then the grayscale recipe
        expected = _reference_view(gray, colour[i].float() / 255, params, i)
        torch.testing.assert_close(luma[i], expected, atol=2e-5, rtol=0)
    from_float = apply_view(rgb, colour.float() / 255, g.manual_seed(2))
    torch.testing.assert_close(from_float, apply_view(rgb, colour, g.manual_seed(2)), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="images must be"):
        apply_view(rgb, colour[:, :2])
    with pytest.raises(TypeError, match="uint8 or float"):
        apply_view(rgb, colour.to(torch.int32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_same_views_on_gpu_and_cpu():
    spec = ViewSpec(size=24, blur_kernel=5, solarize_p=0.3)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    cpu = apply_view(spec, images, torch.Generator().manual_seed(0))
    gpu = apply_view(spec, images.cuda(), torch.Generator().manual_seed(0))
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, atol=1e-4, rtol=0)
