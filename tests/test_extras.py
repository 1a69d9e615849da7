"""The core without its extras: with lightning, FAISS, matplotlib, transformers, webdataset (and the other optional
packages) made unimportable, the library's core imports and trains a method in a plain loop, and a command that needs
an extra says in one line which ``pip install 'contrastkit[...]'`` brings it."""

import json
import subprocess
import sys

import numpy as np
import pytest

from contrastkit.extras import EXTRA_OF_MODULE, missing_extra

# Every optional top-level module set to None in sys.modules: importing it raises ModuleNotFoundError, exactly as
# when the package is not installed (and importlib.util.find_spec answers None for it).
BLOCK = f"import sys\nBLOCKED = {sorted(EXTRA_OF_MODULE)!r}\nfor name in BLOCKED:\n    sys.modules[name] = None\n"

PLAIN_LOOP = """
import torch
import contrastkit.eval, contrastkit.losses, contrastkit.methods, contrastkit.views
from contrastkit.backbones import create_backbone
from contrastkit.methods import SimCLR
from contrastkit.views import SimCLRViews

torch.manual_seed(0)
method = SimCLR(create_backbone("small_cnn", in_chans=1), projection_dim=16, hidden_dim=32)
views = SimCLRViews(16, 1, mean=(0.5,), std=(0.5,))
optimizer = torch.optim.SGD(method.parameters(), lr=0.1)
images = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8)
before = [p.detach().clone() for p in method.parameters()]
a, b = views.batch(images, torch.Generator().manual_seed(0))
loss = method.loss_from_embeddings(method.embed_batch([a, b])).loss
loss.backward()
optimizer.step()
assert torch.isfinite(loss), loss
assert any(not torch.equal(p, q) for p, q in zip(before, method.parameters())), "the step changed nothing"
loaded = sorted({m.split(".")[0] for m, v in sys.modules.items() if v is not None} & set(BLOCKED))
assert not loaded, loaded
print("ok", float(loss))
"""


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=300)


def test_core_imports_and_trains_a_method_in_a_plain_loop_without_the_extras():
    out = run_blocked(PLAIN_LOOP)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.startswith("ok ")


def test_the_blocking_is_real():
    """The check above could pass vacuously if blocking did nothing: importing a blocked module must fail."""
    out = run_blocked("import lightning")
    assert out.returncode != 0 and "ModuleNotFoundError" in out.stderr


@pytest.mark.parametrize(
    ("argv", "extra"),
    [
        (["recipes"], "train"),
        (["train", "simclr-digits", "trainer.max_steps=1"], "train"),
        (["index", "build", "EMB", "--out", "x.faiss"], "index"),
    ],
)
def test_a_command_needing_a_missing_extra_says_which_in_one_line(argv, extra, tmp_path):
    (tmp_path / "EMB").mkdir()  # embeddings to index, so `index build` gets as far as FAISS
    np.save(tmp_path / "EMB" / "embeddings.npy", np.eye(4, 8, dtype=np.float32))
    (tmp_path / "EMB" / "ids.txt").write_text("a\nb\nc\nd\n")
    summary = {"rows": 4, "dim": 8, "dtype": "float32", "skipped": [], "encoder": {}, "encoder_path": None}
    (tmp_path / "EMB" / "embed.json").write_text(json.dumps(summary))
    code = f"from contrastkit.cli.main import main\nraise SystemExit(main({argv!r}))\n"
    out = subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert out.returncode == 1, out.stderr[-3000:]
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and f"pip install 'contrastkit[{extra}]'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_help_works_without_the_extras():
    out = run_blocked("from contrastkit.cli.main import main\nmain(['--help'])\n")
    assert out.returncode == 0 and "recipes" in out.stdout, out.stderr[-3000:]


def test_missing_extra_names_the_package_and_extra_and_ignores_other_modules():
    assert missing_extra(ModuleNotFoundError("x", name="faiss")) == (
        "this needs the optional package 'faiss-cpu', not installed here: pip install 'contrastkit[index]'"
    )
    assert "contrastkit[train]" in missing_extra(ModuleNotFoundError("x", name="lightning.pytorch.callbacks"))
    assert missing_extra(ModuleNotFoundError("x", name="no_such_module")) is None
