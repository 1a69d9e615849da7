"""Similarity search over embeddings (FAISS): :class:`EmbeddingIndex`."""

from contrastkit.index.embedding_index import EmbeddingIndex, SearchResult

__all__ = ["EmbeddingIndex", "SearchResult"]
