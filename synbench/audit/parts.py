"""Audit of published board parts: every column a reader sees, recomputed from the part's feature group or checked
against what that group records (``identity.py``); repair republishes from the features, keeping a sound
display name, over whatever holds the part's file name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from ..board.read import part_schema_problem
from ..core.provenance import utc_now
from ..core.spec import BenchmarkSpec
from ..method.intervals import DEFAULT_REPLICATES, replicate_curves, with_intervals
from ..method.score import add_dimension_matched, empirical_curves, score_rows
from ..stages.curves import (
    build_rows,
    curves_stored,
    oracle_curves,
    part_path,
    publish_scores,
    spec_reference,
    task_ranks,
)
from ..stages.probes import probe_stored, probe_table_path, replicates_path, replicates_stored
from ..store.features import feature_group_path
from ..store.parquet import edited
from ..store.roots import Location, quarantine
from .graph import replicates_differ
from .identity import ModelNames, Specs, column_problem, described_spec, display_problem, part_spec
from .recompute import Fix, Recompute, differs

__all__ = ["Parts", "check_part", "publish"]

_IDENTITY = ["model_fingerprint", "data_hash", "spec_hash", "spec_name", "model"]  # one value per part


@dataclass
class Parts:
    """What checking parts needs: the recomputation, the root's specs and the model-name checks."""

    recompute: Recompute
    specs: Specs
    names: ModelNames


def check_part(
    root: Location, file: Location, table: pa.Table, parts: Parts, report, fixes: list[Fix], distrusted: str | None
) -> set:
    """Problems of one published part; returns the (fingerprint, spec hash) it covers once repaired.

    ``distrusted``: why the lineage check distrusts it (a parent changed), already reported; it is republished."""
    off_schema = part_schema_problem(table)
    rows = table.to_pandas() if not off_schema else pd.DataFrame()
    if off_schema or rows.empty:  # it covers nothing: the board skips it; repair sets it aside
        report.problems.append(f"leaderboard part {file}: {off_schema or 'it holds no rows'}")
        fixes.append(Fix(lambda: _set_aside(root, file, "off the part schema or empty")))
        return set()
    key = (str(rows["model_fingerprint"].iloc[0]), str(rows["data_hash"].iloc[0]))
    basic = _basic_problem(table, rows)  # an edited or mixed part: nothing of it is kept, not even its names
    if key not in parts.recompute.groups:
        if (feature_group_path(root, *key) / "zarr.json").is_file():
            report.problems.append(f"leaderboard part {file}: {basic or 'no sound stored features back it'}")
        else:  # a forged part, or one whose features are gone: nothing can vouch for it
            why = basic or f"no feature group backs it ({key[0]}, data {key[1]})"
            report.problems.append(f"leaderboard part {file}: {why}")
            fixes.append(Fix(lambda: _set_aside(root, file, "no feature group backs it; run the model to publish it")))
        return set()
    group, own = parts.recompute.groups[key]
    spec, problem = part_spec(rows, file, parts.specs, described_spec(rows, parts.recompute, key), own)
    problem = basic or problem
    name_problem, model, note = _model_name(rows, parts, key) if not basic else (None, str(group.attrs["model"]), None)
    scores_differ, count = False, _replicate_count(rows)
    if spec is not None and problem is None:
        expected = _expected_rows(parts.recompute, key, spec, count)
        report.scores_checked += len(rows)
        scores_differ = _scores_differ(rows, expected)
        problem = name_problem or display_problem(rows, key, parts.recompute.groups)
        problem = problem or column_problem(rows, expected, group.attrs)
        problem = problem or _inputs_problem(root, rows, key, spec, count)
        if not problem and (misnamed := _file_problem(root, file, rows, spec, count)):
            problem, (model, count) = misnamed, _original(root, file, rows, spec, str(group.attrs["model"]), count)
        problem = problem or (_SCORES if scores_differ else None)
    if note:
        report.notes.append(f"leaderboard part {file.name}: {note}")
    if not problem and not distrusted:
        return {(key[0], spec.spec_hash)}
    if problem:
        report.problems.append(f"leaderboard part {file}: {problem}")
    if spec is None:
        fixes.append(Fix(lambda: _set_aside(root, file, "its spec cannot be told")))
        return set()
    keep = not basic and not display_problem(rows, key, parts.recompute.groups)
    display = _display(rows) if keep else None
    republish = lambda: _republish(root, file, key, spec, model, display, count)  # noqa: E731
    fixes.append(Fix(republish, key, suspect=scores_differ and not edited(table)))
    return {(key[0], spec.spec_hash)}


_SCORES = "its scores, intervals, best eps or power flags differ from those the stored features give"


def _basic_problem(table: pa.Table, rows: pd.DataFrame) -> str | None:
    mixed = [column for column in _IDENTITY if rows[column].nunique() > 1]
    if mixed:
        return f"its rows mix several values of {mixed[0]}"
    if edited(table):
        return "its rows were edited after publishing (digest mismatch)"
    if not np.isfinite(rows["score"].to_numpy(float)).all():
        return "it holds a non-finite score"
    return None


def _model_name(rows: pd.DataFrame, parts: Parts, key: tuple[str, str]) -> tuple[str | None, str, str | None]:
    """Why the part's model name is wrong, the name to publish it under (its own when it answers to its
    fingerprint, else the reference its features record), and what the audit could not check about it."""
    shown = str(rows["model"].iloc[0])
    problem, note = parts.names.check(shown, key)
    return problem, (str(parts.recompute.groups[key][0].attrs["model"]) if problem else shown), note


def _display(rows: pd.DataFrame) -> str | None:
    shown = rows["display_name"].dropna() if "display_name" in rows else []
    return str(shown.iloc[0]) if len(shown) else None


def _inputs_problem(root: Location, rows: pd.DataFrame, key, spec: BenchmarkSpec, count: int) -> str | None:
    """The curves and replicate tables a part must name: its own features' for its spec and replicate count."""
    wanted = {
        "curves_file": probe_table_path(root, key[0], spec).name,
        "replicates_file": replicates_path(root, key[0], spec, count).name if count else "",
    }
    for column, name in wanted.items():
        stored = set(rows[column].fillna("")) if column in rows else {name}
        if stored != {name}:
            shown = ", ".join(sorted(map(str, stored)))
            return f"it names a {column.split('_')[0]} table of another model or spec ({shown}), not {name!r}"
    return None


def _file_problem(root: Location, file: Location, rows: pd.DataFrame, spec: BenchmarkSpec, count: int) -> str | None:
    """A part's file name is a content key of its model, code version and intervals (``curves.part_path``): a part
    whose model was edited no longer matches it. A renamed part's name only starts with its fingerprint and spec."""
    if _display(rows) is not None or "code_version" not in rows:
        return None
    fingerprint, version = str(rows["model_fingerprint"].iloc[0]), str(rows["code_version"].iloc[0])
    intervals = replicates_path(root, fingerprint, spec, count) if count else None
    wanted = part_path(root, fingerprint, spec, str(rows["model"].iloc[0]), intervals, version).name
    if file.name != wanted:
        return f"its file name is not the one its model, spec and intervals give ({wanted}): its model was edited"
    return None


def _original(root: Location, file: Location, rows: pd.DataFrame, spec: BenchmarkSpec, recorded: str, count: int):
    """(model, replicate count) whose content key is a misnamed part's file name: what it was published as (its
    own model or its features', with no intervals or any stored replicate table's count), else its features' model
    and its own count."""
    fingerprint, version = str(rows["model_fingerprint"].iloc[0]), str(rows["code_version"].iloc[0])
    stem = probe_table_path(root, fingerprint, spec).stem
    named = [path.stem.rsplit("-half", 1)[1] for path in (root / "probes").glob(f"{stem}-half*.parquet")]
    counts = [0] + sorted(int(count) for count in named if count.isdigit())
    for model in dict.fromkeys([str(rows["model"].iloc[0]), recorded]):
        for replicates in counts:
            intervals = replicates_path(root, fingerprint, spec, replicates) if replicates else None
            if part_path(root, fingerprint, spec, model, intervals, version).name == file.name:
                return model, replicates
    return recorded, count


def _scores_differ(rows: pd.DataFrame, expected: pd.DataFrame) -> bool:
    values = [column for column in _CHECKED if column in expected]
    return differs(rows.fillna(_MISSING), expected, ["eps", "threshold"], values) or replicates_differ(rows, expected)


def _set_aside(root: Location, file: Location, why: str) -> str:
    stamp = utc_now().replace(":", "")
    if file.is_file() or file.is_symlink():
        quarantine(root, file, stamp)
    return f"moved {file.name} ({why}) to quarantine/{stamp}"


def _replicate_count(rows: pd.DataFrame) -> int:
    return int(rows["ci_replicates"].iloc[0]) if "ci_replicates" in rows else 0


_CHECKED = (
    "score score_low score_high best_eps score_dm score_dm_low score_dm_high best_eps_dm probe_rank r_over_n "
    "underpowered n_train_needed ci_replicates"
).split()
# no interval or no dimension-matched score: -1, as NaN cannot be compared
_MISSING = {"score_low": -1.0, "score_high": -1.0, "score_dm": -1.0, "score_dm_low": -1.0, "score_dm_high": -1.0}


def _expected_rows(recompute: Recompute, key: tuple[str, str], spec: BenchmarkSpec, count: int) -> pd.DataFrame:
    """The part's rows as publishing would write them, every score recomputed from the features (provenance from
    their record, the feature width from their arrays)."""
    shape = recompute.shape(key, spec)
    reference = spec_reference(spec, shape)
    results = recompute.results(key, spec)
    ranks = task_ranks(results, spec)
    rows = score_rows(empirical_curves(results), reference, spec.thresholds)
    curves = replicate_curves(recompute.replicates(key, spec, count)) if count else None
    oracle = oracle_curves(recompute.oracles(spec, ranks, shape), spec, ranks)
    rows = add_dimension_matched(with_intervals(rows, curves, reference), reference, oracle)
    provenance = {**recompute.groups[key][0].attrs, "feature_dim": recompute.width(key)}
    return build_rows(rows, provenance, spec, None, ranks).fillna(_MISSING)


def _republish(
    root: Location, file: Location, key, spec: BenchmarkSpec, model: str, display: str | None, count: int
) -> str:
    stamp = utc_now().replace(":", "")
    if file.is_file():
        quarantine(root, file, stamp)
    return publish(root, key, spec, model, f"the old part is in quarantine/{stamp}", count, display)


def publish(
    root: Location,
    key: tuple[str, str],
    spec: BenchmarkSpec,
    model: str,
    note: str,
    count: int = DEFAULT_REPLICATES,
    display: str | None = None,
) -> str:
    """Publish a model's part from its features, over whatever holds its file name (that did not pass as it)."""
    intervals = replicates_path(root, key[0], spec, count) if count else None
    target = part_path(root, key[0], spec, model, intervals)
    if target.is_file():
        quarantine(root, target, utc_now().replace(":", ""))
    curves = curves_stored(root, probe_stored(root, key[0], spec), spec)
    path, _ = publish_scores(root, key[0], spec, curves, model, replicates_stored(root, key[0], spec, count), display)
    shown = f" shown as {display!r}" if display else ""
    return f"published {path.name} for {model!r}{shown} ({note})"
