"""Training of facefind's face embedder: prepare crops, train with triplet loss, export."""
