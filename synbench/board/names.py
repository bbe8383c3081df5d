"""Model identity on the board: an entry is a fingerprint; people see a short display name and may type either.

An entry's display name is the name it was renamed to (``synbench board rename``), else its oldest
reference with any weights path cut to the file name plus the weights' short digest
(``timm:resnet18@ckpt-0.safetensors [3fa2c1d0]``); controls, hub names, seeds and ``pkg:`` weights
stay as they are. Two entries may share a display name (the same weights fed another shape); the
fingerprint tells them apart, and a name that matches several entries is refused with the list.
"""

from __future__ import annotations

import re

import pandas as pd

from ..core.errors import SynBenchError
from ..models.references import split_weights

__all__ = ["SHORT", "display_name", "with_display_names", "entry_aliases", "pick_fingerprint", "names_a_fingerprint"]

SHORT = 8  # hex digits of a fingerprint or weights digest shown to people
_WITH_WEIGHTS = re.compile(r"^(timm|py):([^@#]+)@([^#]+)(#\w+)?$")


def _one(reference: str, weights_digest: str) -> str:
    match = _WITH_WEIGHTS.match(reference)
    if not match:
        return reference
    scheme, target, weights, layer = match.groups()
    rule, source = split_weights(weights)
    if source.startswith("pkg:"):
        return reference
    file_name = re.split(r"[/\\]", source)[-1]
    digest = f" [{weights_digest[:SHORT]}]" if weights_digest else ""
    return f"{scheme}:{target}@{f'{rule}:' if rule else ''}{file_name}{layer or ''}{digest}"


def display_name(model: str, weights_digest: str = "") -> str:
    """A model reference fit to show: a weights path becomes its file name and the weights' short digest.

    ``model`` may hold several references joined by ", " (one fingerprint under several names).
    """
    return ", ".join(_one(reference, weights_digest) for reference in model.split(", "))


def with_display_names(board: pd.DataFrame) -> pd.DataFrame:
    """``board`` with a ``display_name`` column, one per fingerprint (rows oldest first: the oldest name)."""
    if board.empty:
        return board
    renamed = board["display_name"].dropna() if "display_name" in board else pd.Series(dtype=object)
    names = {}
    for fingerprint, rows in board.groupby("model_fingerprint", sort=False):
        chosen = renamed.reindex(rows.index).dropna()
        if len(chosen):
            names[fingerprint] = str(chosen.iloc[-1])
            continue
        digest = str(rows["weights_digest"].iloc[0] or "") if "weights_digest" in rows else ""
        names[fingerprint] = _one(str(rows["model"].iloc[0]).split(", ")[0], digest or str(fingerprint))
    return board.assign(display_name=board["model_fingerprint"].map(names))


def entry_aliases(board: pd.DataFrame) -> dict[str, set[str]]:
    """Every name each fingerprint answers to: its display name, each reference, and each reference's short
    form with and without the weights digest."""
    board = board if "display_name" in board else with_display_names(board)
    digests = board["weights_digest"] if "weights_digest" in board else pd.Series("", index=board.index)
    aliases: dict[str, set[str]] = {}
    for fingerprint, model, digest, shown in zip(
        board["model_fingerprint"], board["model"], digests.fillna(""), board["display_name"], strict=True
    ):
        names = aliases.setdefault(fingerprint, set())
        names.add(shown)
        for reference in str(model).split(", "):
            names |= {reference, _one(reference, digest or fingerprint), _one(reference, "")}
    return aliases


def names_a_fingerprint(name: str, fingerprints) -> str | None:
    """The fingerprint among ``fingerprints`` that ``name`` spells out or begins (as ``pick_fingerprint`` reads a
    name no entry answers to), else None: no model may be named so."""
    if not re.fullmatch(r"[0-9a-f]+", name):
        return None
    return next((fp for fp in sorted(fingerprints) if str(fp).startswith(name)), None)


def _listed(board: pd.DataFrame, fingerprints) -> str:
    shown = board.drop_duplicates("model_fingerprint").set_index("model_fingerprint")["display_name"]
    return ", ".join(f"{shown[fp]} (fingerprint {fp})" for fp in sorted(fingerprints, key=lambda fp: shown[fp]))


def pick_fingerprint(board: pd.DataFrame, name: str) -> str:
    """The fingerprint of the one entry that ``name`` names: any of its names, else a fingerprint prefix.

    Raises:
        SynBenchError: no entry, or several, answer to ``name`` (the message lists them with fingerprints).
    """
    board = board if "display_name" in board else with_display_names(board)
    aliases = entry_aliases(board)
    if name in aliases:  # a whole fingerprint names its entry, whatever another entry is called
        return name
    matches = sorted(fp for fp, names in aliases.items() if name in names)
    if not matches and name:
        matches = sorted(fp for fp in aliases if fp.startswith(name))
    if not matches:
        more = f" and {len(aliases) - 10} more" if len(aliases) > 10 else ""
        listed = _listed(board, list(aliases)[:10])
        raise SynBenchError(f"no model {name!r} on the board; models there: {listed}{more}.")
    if len(matches) > 1:
        raise SynBenchError(
            f"{name!r} matches {len(matches)} models: {_listed(board, matches)}; give a fingerprint prefix "
            "or the name with its [digest]."
        )
    return matches[0]
