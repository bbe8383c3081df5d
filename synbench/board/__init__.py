"""Reading the board: the union of published parts (``read``), model names, rank keys and bands,
paired comparisons, hand edits (remove, rename), tables and formats, plots and the HTML page.

Imports: ``synbench.core``, ``method``, ``models``, ``store``, ``stages``.
"""
