"""facefind's benchmarks: scripts that measure accuracy and speed and write results JSON.

Run them from the repository root as modules (``python -m benchmarks.accuracy``,
``python -m benchmarks.speed``); ``python -m benchmarks.report`` turns their JSON into
``docs/benchmarks.md`` and its plots.
"""
