import subprocess
import sys


def test_losses_import_without_lightning():
    code = (
        "import sys, contrastkit.losses as L; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning', 'lightly')]; "
        "assert not bad, bad; print(len(L.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(out.stdout.strip()) >= 10


def test_library_packages_import_without_lightning():
    """Views, heads, eval, methods, backbones, optim, outputs, finetuning (until it trains) and load_encoder are plain
    torch."""
    code = (
        "import sys, contrastkit, contrastkit.views, contrastkit.heads, contrastkit.eval, contrastkit.methods, "
        "contrastkit.backbones, contrastkit.finetuning, contrastkit.optim, contrastkit.outputs; "
        "heavy = ('lightning', 'pytorch_lightning', 'lightly', 'omegaconf'); "
        "bad = [m for m in sys.modules if m.split('.')[0] in heavy]; "
        "assert not bad, bad; assert callable(contrastkit.load_encoder) and callable(contrastkit.finetune)"
    )
    subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
