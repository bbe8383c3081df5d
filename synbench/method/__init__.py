"""The pure math of METHOD.md: synthetic blocks (``generate``), the eps-robust probe and its solvers
(``probe``, ``probe_solve``, ``tridiagonal``, ``blas``, ``linalg``), curves and scores (``score``), the
dimension-matched oracle, half-sampling intervals and their refits, and robust linear heads.

Arrays in, arrays out: no file, no object store, no Prefect. Imports: ``synbench.core`` only.
"""
