"""The only code that touches files or object-store URLs: roots and atomic writes (``roots``), Parquet
tables and Zarr feature groups, one-writer locks and leases, the artifact graph's digests
(``lineage``) and the resources a benchmark needs.

Imports: ``synbench.core`` only.
"""
