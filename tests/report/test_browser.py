"""The report as a person sees it: rendered by headless Chromium, the page is not blank and every plot shows."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from tests.report.test_write_report import FIGURE_SECTIONS

INSTALL = "install Debian's chromium (`make test` does it as root: apt-get install chromium)"

# Records, once the page has loaded, whether each section's figure decoded and is laid out with a size.
PROBE = """<script>
window.addEventListener("load", () => {
  const out = {};
  for (const section of document.querySelectorAll("section")) {
    const img = section.querySelector("img");
    const box = img ? img.getBoundingClientRect() : null;
    out[section.id] = img ? {complete: img.complete, natural: img.naturalWidth, width: box.width,
                             height: box.height} : null;
  }
  const pre = document.createElement("pre");
  pre.id = "result";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        print(f"chromium not found: {INSTALL}")
        pytest.skip(f"the browser test needs the chromium binary: {INSTALL}")
    return path


def run_chromium(binary: str, profile, *args: str) -> subprocess.CompletedProcess:
    command = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_chromium_renders_every_plot(reported_run, tmp_path):
    binary = chromium()
    probed = tmp_path / "probed.html"
    probed.write_text(reported_run.report.read_text().replace("</body>", PROBE + "\n</body>"))
    done = run_chromium(binary, tmp_path / "profile-dom", "--virtual-time-budget=5000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="result">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"no probe result in the DOM (rc {done.returncode}): {done.stderr[-2000:]}"
    result = json.loads(html.unescape(found.group(1)))
    assert set(FIGURE_SECTIONS) <= set(result)
    for sid in FIGURE_SECTIONS:
        img = result[sid]
        assert img is not None, f"{sid}: no <img>"
        assert img["complete"] and img["natural"] > 100, f"{sid}: the PNG did not decode: {img}"
        assert img["width"] > 100 and img["height"] > 100, f"{sid}: laid out without a size: {img}"


def test_chromium_screenshot_is_not_blank(reported_run, tmp_path):
    binary = chromium()
    shot = tmp_path / "shot.png"
    done = run_chromium(binary, tmp_path / "profile-shot", "--window-size=1280,4000", f"--screenshot={shot}",
                        reported_run.report.as_uri())  # fmt: skip
    assert shot.is_file(), f"no screenshot (rc {done.returncode}): {done.stderr[-2000:]}"
    image = Image.open(shot).convert("RGB")
    pixels = np.asarray(image, dtype=np.float64)  # (H, W, 3)
    assert image.size == (1280, 4000)
    assert pixels.std() > 10, "a blank page"
    assert len(image.getcolors(maxcolors=1 << 22)) > 500, "too few colours for a page of plots"
    # the plots are there, not only text: the page holds the plots' own colours (loss blue, kNN green)
    colours = {c for _, c in image.getcolors(maxcolors=1 << 22)}
    assert (31, 119, 180) in colours and (44, 160, 44) in colours
