"""Model identity on the board: an entry is a fingerprint; people see a short display name and may type either.

An entry's display name is the name it was renamed to (``synbench board rename``), else its oldest
reference with any weights path cut to the file name plus the weights' short digest
(``timm:resnet18@ckpt-0.safetensors [3fa2c1d0]``); controls, hub names, seeds and ``pkg:`` weights
stay as they are. Two entries may share a display name (the same weights fed another shape); the
fingerprint tells them apart, and a name that matches several entries is refused with the list.
"""

from __future__ import annotations

import os
import re
from pathlib import PurePath

import pandas as pd

from ..core.errors import SynBenchError
from ..models.references import split_weights
from ..models.weights_paths import absolute_reference, weights_path

__all__ = [
    "SHORT",
    "display_name",
    "short_name",
    "short_names",
    "with_display_names",
    "entry_aliases",
    "pick_fingerprint",
    "names_a_fingerprint",
]

SHORT = 8  # hex digits of a fingerprint or weights digest shown to people
_WITH_WEIGHTS = re.compile(r"^(timm|py):([^@#]+)@([^#]+)(#\w+\*?)?$")  # a layer, or every stage (#stage*)


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


_SHOWN = re.compile(r"^py:(?:[\w.]+\.)?(\w+):(\w+)(?:@(?:\w+:)?([^#\[]+?))?(#\w+)?( \[\w+\])?$")
_EXTENSION = re.compile(r"\.(safetensors|pth|pt|bin|ckpt)(?=( \[\w+\])?$|#)")


def short_name(shown: str) -> str:
    """A display name made shorter for a narrow table: a ``py:`` model by its module's last part and factory, or
    by its weights file when that starts with the factory's name; weights files without their extension; a
    notebook's module by its class. The digest stays.
    ``py:synbench.demo:digits_cnn@digits_cnn-e4.safetensors [3f2a91c0]`` -> ``digits_cnn-e4 [3f2a91c0]``."""
    match = _SHOWN.match(shown)
    if match:
        module, factory, weights, layer, digest = match.groups()
        stem = _EXTENSION.sub("", weights) if weights else None
        name = stem if stem and stem.startswith(factory) else f"{factory}@{stem}" if stem else f"{module}:{factory}"
        return f"{name}{layer or ''}{digest or ''}"
    if shown.startswith("module:"):
        return f"module:{shown.rsplit('.', 1)[-1]}"
    return _EXTENSION.sub("", shown)


def short_names(shown: list[str]) -> list[str]:
    """``short_name`` of each name of one table, without its ``[digest]`` where the rest tells it apart from the
    others (``digits_cnn-e4``; two runs' ``ckpt-1`` keep theirs)."""
    short = [short_name(name) for name in shown]
    bare = [re.sub(r" \[\w+\]$", "", name) for name in short]
    return [b if bare.count(b) == 1 else s for s, b in zip(short, bare, strict=True)]


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
        short = short_name(shown)
        names |= {shown, short, re.sub(r" \[\w+\]$", "", short)}  # as the wide and the compact tables show it
        for reference in str(model).split(", "):
            names |= {reference, _one(reference, digest or fingerprint), _one(reference, "")}
    return aliases


def names_a_fingerprint(name: str, fingerprints) -> str | None:
    """The fingerprint among ``fingerprints`` that ``name`` spells out or begins (as ``pick_fingerprint`` reads a
    name no entry answers to), else None: no model may be named so."""
    if not re.fullmatch(r"[0-9a-f]+", name):
        return None
    return next((fp for fp in sorted(fingerprints) if str(fp).startswith(name)), None)


def _by_weights_path(aliases: dict[str, set[str]], name: str) -> list[str]:
    """Entries a reference with a weights path names once its path is made absolute, else (a root moved or
    copied elsewhere) entries whose stored path ends with the path as typed, folder by folder."""
    typed = weights_path(name)
    if typed is None:
        return []
    absolute = absolute_reference(name)
    found = sorted(fp for fp, names in aliases.items() if absolute in names)
    if found:
        return found
    tail = PurePath(os.path.normpath(typed)).parts

    def moved_twin(reference: str) -> bool:  # the same reference but for a path that ends with the one typed
        path = weights_path(reference)
        return bool(path) and PurePath(path).parts[-len(tail) :] == tail and reference.replace(path, typed) == name

    return sorted(fp for fp, names in aliases.items() if any(map(moved_twin, names)))


def _listed(board: pd.DataFrame, fingerprints) -> str:
    shown = board.drop_duplicates("model_fingerprint").set_index("model_fingerprint")["display_name"]
    return ", ".join(f"{shown[fp]} (fingerprint {fp})" for fp in sorted(fingerprints, key=lambda fp: shown[fp]))


def pick_fingerprint(board: pd.DataFrame, name: str) -> str:
    """The fingerprint of the one entry that ``name`` names: any of its names, else a fingerprint prefix, else
    (a reference with a weights path) its absolute form or a stored path that ends with the one typed (a root
    moved or copied with its checkpoints).

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
        matches = _by_weights_path(aliases, name)
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
