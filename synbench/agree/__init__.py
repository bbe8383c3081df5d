"""``synbench agree``: real labelled data, the board's models rerun on it, linear probing with rank
agreement per key, and robust linear probing (``--robust``).

Imports: ``synbench.core``, ``method``, ``models``, ``store``, ``stages``, ``board``.
"""
