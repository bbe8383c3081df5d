"""The audit: chunks and manifests (``root``), the artifact-graph walk over recorded parents,
real-data groups and agreement tables (``graph``), and the recomputed probe tables, curves and parts
(``tables``); repair regenerates from the sources.

Imports: every part below it: ``core``, ``method``, ``models``, ``store``, ``stages``, ``board``, ``agree``.
"""
