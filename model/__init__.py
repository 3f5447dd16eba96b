"""Offline side of streamrec: data loading, training, the FAISS index, the ranker, metrics."""
