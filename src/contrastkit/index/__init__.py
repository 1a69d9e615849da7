"""Similarity search over embeddings (FAISS): :class:`EmbeddingIndex`, and an index over ``contrastkit embed``
output queried by image or text."""

from contrastkit.index.embedding_index import EmbeddingIndex, SearchResult
from contrastkit.index.search import build_index, search_image, search_text

__all__ = ["EmbeddingIndex", "SearchResult", "build_index", "search_image", "search_text"]
