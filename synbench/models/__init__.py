"""Model references and encoders: parsing a reference string, loading weights safely (checkpoints,
weight adapters), the encoder a reference resolves to, its fingerprint and its preprocessing.

Imports: ``synbench.core`` only.
"""
