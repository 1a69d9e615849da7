import os

import pytest
import torch

# Set CONTRASTKIT_TEST_SEED to run the suite from another global RNG state (robustness check).
SEED = int(os.environ.get("CONTRASTKIT_TEST_SEED", "0"))


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same global RNG state, so a failure reproduces."""
    torch.manual_seed(SEED)
