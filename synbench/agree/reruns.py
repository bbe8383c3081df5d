"""The models on a board that ``synbench agree`` reruns on real data, each resolved as it was benchmarked.

A model is rerun from a reference: a name it has on the board, else the reference its stored features
record. A model evaluated from a notebook (an ``nn.Module`` in memory, on the board as ``module:...``
or the ``name`` it was given) has none: it is skipped with a note, never a failure of the whole command.
"""

from __future__ import annotations

import pandas as pd

from ..board.names import pick_fingerprint
from ..board.read import read_board
from ..board.tables import summary_records
from ..core.errors import EncoderError, SynBenchError
from ..models.encoders import Encoder, resolve_encoder
from ..models.references import parse_reference
from ..store.features import open_feature_group
from ..store.roots import Location

__all__ = ["board_models", "resolve_as_benchmarked", "NOTEBOOK_NOTE"]

NOTEBOOK_NOTE = (
    "evaluated from a notebook (a module in memory), so agree cannot rerun it; evaluate it by reference "
    "(e.g. py:my_module:build) to include it"
)


def _reference(candidates: list[str]) -> str | None:
    """The first candidate that is a model reference (a notebook's name or ``module:...`` is not)."""
    for text in candidates:
        try:
            parse_reference(text)
        except EncoderError:
            continue
        return text
    return None


def resolve_as_benchmarked(reference: str, used: dict, allow_py: bool | None) -> Encoder:
    """The encoder with the preprocessing its stored features record (``--input-shape``, ``--mean``, ``--std``)."""
    if not used or parse_reference(reference).scheme in ("identity", "noise"):  # controls take no overrides
        return resolve_encoder(reference, allow_py=allow_py)
    shape, mean, std = (tuple(used[key]) for key in ("input_shape", "mean", "std"))
    return resolve_encoder(reference, shape, allow_py, mean=mean, std=std)


def board_models(
    root: Location, spec: str | None = None, models: list[str] | None = None, allow_py: bool | None = None
) -> tuple[list[tuple[pd.DataFrame, Encoder]], list[dict]]:
    """Each model on one spec's board: its summary rows and its encoder; and the models skipped, with why.

    ``models``: only these (as the board names them); a ``py:`` model named here may run its code, as
    on the CLI's other commands. ``allow_py``: run every ``py:`` model (default: the process's setting).

    Raises:
        SynBenchError: an empty board, several specs, an unknown name in ``models``, no model left to
            rerun, or a model whose reference now resolves to other weights or code than those on the board.
    """
    board = read_board(root, spec=spec)
    records = summary_records(board)
    if records.empty:
        raise SynBenchError(f"the board under {str(root)!r} is empty; run `synbench demo` or `synbench run` first.")
    if records["spec_hash"].nunique() > 1:
        names = ", ".join(sorted(set(records["spec_name"] + " " + records["spec_hash"].str[:8])))
        raise SynBenchError(f"the board holds several specs ({names}); pick one with --spec.")
    if models:  # display names, references or fingerprint prefixes; an ambiguous one is an error
        records = records[records["model_fingerprint"].isin([pick_fingerprint(board, model) for model in models])]
    data_hashes = board.groupby("model_fingerprint")["data_hash"].first()
    found, skipped = [], []
    for fingerprint, model_rows in records.groupby("model_fingerprint", sort=False):
        group = open_feature_group(root, fingerprint, data_hashes[fingerprint])
        attrs = dict(group.attrs) if group is not None else {}
        name = model_rows["model"].iloc[0]
        reference = _reference([*name.split(", "), str(attrs.get("model", ""))])
        if reference is None:
            skipped.append({"model": name, "reason": NOTEBOOK_NOTE})
            continue
        allowed = True if models else allow_py
        encoder = resolve_as_benchmarked(reference, dict(attrs.get("preprocess") or {}), allowed)
        if encoder.fingerprint != fingerprint:
            raise SynBenchError(f"{reference} now resolves to other weights or code than those on the board; rerun it.")
        found.append((model_rows, encoder))
    if not found:
        raise SynBenchError(
            f"no model on this board can be rerun: its {len(skipped)} were evaluated from a notebook (modules in "
            "memory); evaluate them by reference (e.g. py:my_module:build)."
        )
    return found, skipped
