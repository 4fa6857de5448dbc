"""facefind's REST service."""
