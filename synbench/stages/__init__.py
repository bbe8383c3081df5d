"""Stage I/O: what each of the five stages reads and writes, and how one artifact is made from the one
before (``probes``: recipes, probe tables, replicates; ``extract``; ``curves``: oracles, curves,
published parts), plus progress reporting per stage.

Imports: ``synbench.core``, ``method``, ``models``, ``store``.
"""
