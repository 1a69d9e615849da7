"""Evaluation of frozen embeddings, for any encoder: kNN, linear probe, retrieval and representation health.

Importing this package imports neither Lightning nor FAISS.
"""

from contrastkit.eval.embed_images import embed_images
from contrastkit.eval.evaluate_encoder import evaluate_encoder, format_report, knn_and_probe
from contrastkit.eval.health import (
    EmbeddingStd,
    alignment,
    collapse_warnings,
    embedding_std,
    rankme,
    uniformity,
)
from contrastkit.eval.knn import KNNResult, knn_accuracy, knn_scores
from contrastkit.eval.linear_probe import FittedProbe, LinearProbeResult, fit_linear_probe, linear_probe
from contrastkit.eval.retrieval import retrieval_metrics
from contrastkit.eval.zero_shot import ZeroShotResult, image_text_retrieval, zero_shot, zero_shot_classifier

__all__ = [
    "EmbeddingStd",
    "FittedProbe",
    "KNNResult",
    "LinearProbeResult",
    "ZeroShotResult",
    "alignment",
    "collapse_warnings",
    "embed_images",
    "embedding_std",
    "evaluate_encoder",
    "fit_linear_probe",
    "format_report",
    "image_text_retrieval",
    "knn_accuracy",
    "knn_and_probe",
    "knn_scores",
    "linear_probe",
    "rankme",
    "retrieval_metrics",
    "uniformity",
    "zero_shot",
    "zero_shot_classifier",
]
