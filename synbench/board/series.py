"""Series on the board: the checkpoints of one training run (score against step) and the layers of one model
(score against depth), each drawn with its band on the page."""

from __future__ import annotations

import pandas as pd

from ..models.references import EVERY_STAGE, layer_step, series_step
from .tables import score_cells, summary_records

__all__ = ["series_records", "series_table", "CHECKPOINTS", "LAYERS"]

CHECKPOINTS, LAYERS = "checkpoints", "layers"  # the two kinds of series
_COLUMNS = ["series", "kind", "step", "model", "spec_name", "spec_hash", "threshold", "score", "score_low"]
_ORDER = ["spec_hash", "series", "threshold", "step"]


def series_records(board: pd.DataFrame) -> pd.DataFrame:
    """Series on the board, two or more points each: checkpoints whose weights files differ only in a step number
    (step: that number), and the stages of one model (``REF#stage<K>``, step K), followed by the model's head
    (``REF``) one step after its last stage when the board holds it.

    Columns series, kind (``checkpoints`` or ``layers``), step, model, spec_name, spec_hash, threshold, score,
    score_low, score_high, best_eps, score_kind: a layer series' score columns hold its ``score_dm`` (the
    stages differ in width), a checkpoint series' the paper score.
    """
    records = summary_records(board)
    firsts = [model.split(", ")[0] for model in records["model"]]
    found = []
    for kind, step_of in ((CHECKPOINTS, series_step), (LAYERS, layer_step)):
        steps = [step_of(first) for first in firsts]
        named = records.assign(series=[s[0] if s else None for s in steps], step=[s[1] if s else -1 for s in steps])
        found.append(named[named["series"].notna()].assign(kind=kind, score_kind="score"))
    found.append(_heads(records.assign(first=firsts), found[-1]))
    found[1:] = [_dimension_matched(part) for part in found[1:]]
    series = pd.concat(found, ignore_index=True)
    sizes = series.groupby(["spec_hash", "series"])["step"].transform("nunique")
    return series[sizes >= 2][[*_COLUMNS, "score_high", "best_eps", "score_kind"]].sort_values(_ORDER)


def _dimension_matched(layers: pd.DataFrame) -> pd.DataFrame:
    """Layer rows show score_dm in the score columns: a model's stages differ in width, which the paper score
    confounds (METHOD.md section 7)."""
    if "score_dm" not in layers or layers["score_dm"].isna().all():  # parts published before score_dm
        return layers.assign(score_kind="score")
    renamed = {f"score_dm{end}": f"score{end}" for end in ("", "_low", "_high")} | {"best_eps_dm": "best_eps"}
    return layers.drop(columns=list(renamed.values())).rename(columns=renamed).assign(score_kind="score_dm")


def _heads(records: pd.DataFrame, stages: pd.DataFrame) -> pd.DataFrame:
    """Each layer series' head: the rows of its reference without a layer, one step after the last stage."""
    heads = []
    for (spec_hash, name), rows in stages.groupby(["spec_hash", "series"]):
        base = name.removesuffix(f"#{EVERY_STAGE}")
        head = records[(records["spec_hash"] == spec_hash) & records["first"].isin([base, f"{base}#pre_logits"])]
        heads.append(head.assign(series=name, step=rows["step"].max() + 1, kind=LAYERS))
    return pd.concat(heads) if heads else stages.iloc[:0]


def series_table(series: pd.DataFrame) -> pd.DataFrame:
    """Wide view of one series (``series_records`` rows): one row per step, a "score ± interval" cell per t.

    A layer series names its rows by layer (``stage0`` ... ``head``)."""
    table = series.assign(cell=score_cells(series)).pivot_table(
        index="step", columns="threshold", values="cell", aggfunc="first"
    )
    table.columns = [f"t={c:g}" for c in table.columns]
    table = table.reset_index()
    if series["kind"].iloc[0] == LAYERS:
        pairs = zip(series["step"], series["model"], strict=True)
        heads = {step for step, model in pairs if not layer_step(model.split(", ")[0])}
        labels = table["step"].map(lambda step: "head" if step in heads else f"stage{step}")
        table = table.assign(step=labels).rename(columns={"step": "layer"})
    return table
