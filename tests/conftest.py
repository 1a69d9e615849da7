import os

# No test downloads anything: Hugging Face loading is local-only (the MiniLM package ships its model folder).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

# Set CONTRASTKIT_TEST_SEED to run the suite from another global RNG state (robustness check).
SEED = int(os.environ.get("CONTRASTKIT_TEST_SEED", "0"))


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same global RNG state, so a failure reproduces."""
    torch.manual_seed(SEED)


@pytest.fixture(scope="session")
def minilm():
    """The pretrained all-MiniLM-L6-v2 text tower (loaded once), in eval mode."""
    from contrastkit.backbones.dual_encoder import create_text_encoder

    return create_text_encoder("minilm").eval()
