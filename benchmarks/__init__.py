"""The scripts behind the README's figures, each run as ``python -m benchmarks.NAME``.

Not shipped in the wheel; may import everything (train, export, edge_runtime).
"""
