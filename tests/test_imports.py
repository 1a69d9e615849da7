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
