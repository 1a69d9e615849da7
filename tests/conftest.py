import os

# No test downloads anything: Hugging Face loading is local-only (the MiniLM package ships its model folder).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import gzip
import json
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# Property tests draw the same examples on every machine and run (a fuzz failure reproduces, CI never flakes on a
# draw); HYPOTHESIS_PROFILE=explore draws new ones each run and keeps failures in .hypothesis/, to hunt for bugs.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))

# Set CONTRASTKIT_TEST_SEED to run the suite from another global RNG state (robustness check).
SEED = int(os.environ.get("CONTRASTKIT_TEST_SEED", "0"))


# The same number of threads on every machine: reductions split across threads add in another order, so results a
# test compares exactly (or against a margin) would otherwise depend on the host's core count.
torch.set_num_threads(2)

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "MASTER_ADDR",
                      "MASTER_PORT", "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_RUN_ID")  # fmt: skip


@pytest.fixture(autouse=True)
def _no_launcher_environment(monkeypatch):
    """Tests run as one plain process even inside a torchrun, SLURM or Kubernetes job: the variables those set
    would switch `contrastkit embed` to shards and Lightning to the job's processes. Tests that want them set them."""
    for name in os.environ:
        if name in LAUNCHER_VARIABLES or name.startswith("SLURM_"):
            monkeypatch.delenv(name)


@pytest.fixture(autouse=True)
def _seed_torch():
    """Every test starts from the same global RNG state, so a failure reproduces."""
    torch.manual_seed(SEED)


@pytest.fixture(scope="session")
def minilm():
    """The pretrained all-MiniLM-L6-v2 text tower (loaded once), in eval mode."""
    from contrastkit.backbones.dual_encoder import create_text_encoder

    return create_text_encoder("minilm").eval()


# Python's reference documentation as text pairs, pinned: `pydoc_data` changes with every Python patch release, so
# the pairs are the ones Python 3.11.7 gave (`python -m contrastkit.data.python_doc_pairs OUT.jsonl`, gzipped).
DOC_PAIRS = Path(__file__).parent / "data" / "python_doc_pairs.jsonl.gz"


@pytest.fixture(scope="session")
def doc_pairs() -> list[dict[str, str]]:
    """804 ``{"anchor", "positive", "negative"}`` pairs, the same on every machine."""
    with gzip.open(DOC_PAIRS, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def doc_pairs_file(doc_pairs, tmp_path) -> Path:
    """The pinned pairs as a JSON-lines file ``contrastkit train text-pairs`` reads."""
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in doc_pairs), encoding="utf-8")
    return path
