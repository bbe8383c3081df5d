"""The vocabulary every part shares: errors (one line, the fix), the benchmark spec and its hashes,
versions and timestamps, and what an encoder is fed (``Preprocess``).

Imports: the standard library and numpy only; nothing else of synbench.
"""
