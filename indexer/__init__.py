"""facefind's retrieval core: decode, detect, crop, embed and search faces."""

__version__ = "0.1.0"
