"""The HTTP layer: routes, dependencies and the translation of errors."""
