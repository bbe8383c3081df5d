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
from ..models.encoders import Encoder, resolve_as_stored
from ..models.references import parse_reference
from ..models.weights_paths import relocated_reference
from ..store.features import open_feature_group
from ..store.roots import Location, is_remote

__all__ = ["check_powered", "board_models", "NOTEBOOK_NOTE"]

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
        reference = reference if is_remote(root) else relocated_reference(reference, root)  # a moved root's files
        encoder = resolve_as_stored(reference, dict(attrs.get("preprocess") or {}), allowed)
        if encoder.fingerprint != fingerprint:
            raise SynBenchError(
                f"{reference} now resolves to other weights or code than those on the board (fingerprint "
                f"{encoder.fingerprint}, not {fingerprint}): its weights file or module changed, or its factory draws "
                "new weights each time (seed it, e.g. with torch.manual_seed); run it again to put what it gives now "
                "on the board."
            )
        found.append((model_rows, encoder))
    if not found:
        raise SynBenchError(
            f"no model on this board can be rerun: its {len(skipped)} were evaluated from a notebook (modules in "
            "memory); evaluate them by reference (e.g. py:my_module:build)."
        )
    return found, skipped


def check_powered(root: Location, spec: str | None, models: list[str] | None) -> None:
    """Rank agreement needs at least 3 powered models: fewer is one line and exit 2, before any work."""
    board = read_board(root, spec=spec, warn=False)
    records = summary_records(board)
    if records.empty or records["spec_hash"].nunique() > 1:
        return  # agreement() says what is wrong
    if models:
        records = records[records["model_fingerprint"].isin([pick_fingerprint(board, m) for m in models])]
    entries = records.drop_duplicates("model_fingerprint")
    powered = int((~entries["underpowered"]).sum())
    if powered < 3:
        chosen = " of those named with --models" if models else ""
        raise SynBenchError(
            f"agree needs at least 3 powered models to measure rank agreement; {powered} of the {len(entries)} "
            f"models{chosen} on spec {entries['spec_name'].iloc[0]} are powered: add models, or rerun the "
            "underpowered ones with the n_train the board names."
        )
