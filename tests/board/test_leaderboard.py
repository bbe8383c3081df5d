import json
import multiprocessing

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from synbench.board.page import board_html
from synbench.board.read import read_board, write_snapshot
from synbench.board.tables import format_board
from synbench.core.spec import BenchmarkSpec
from synbench.stages.curves import build_rows, part_path, publish
from synbench.store.roots import location


def _rows(model: str, spec: BenchmarkSpec, score: float) -> pd.DataFrame:
    scores = [
        {"eps": e, "threshold": t, "score": score - e, "best_eps": e == 0} for e in spec.eps for t in spec.thresholds
    ]
    provenance = {"model": model, "model_fingerprint": f"fp-{model}", "device": "cpu:x86_64", "dtype": "fp32"}
    return build_rows(scores, provenance, spec)


def _put(root, rows: pd.DataFrame, fingerprint: str, spec: BenchmarkSpec):
    return publish(part_path(location(root), fingerprint, spec, rows["model"].iloc[0]), rows)


def publish_one(args: tuple[str, str, float]) -> bool:
    """One publisher process's work (also used on an object store by tests/test_object_store.py)."""
    root, model, score = args
    spec = BenchmarkSpec(name="tiny", scales=(1.0, 2.0), n_train=8, n_test=8, eps=(0.0, 0.2), thresholds=(0.6, 0.7))
    return _put(root, _rows(model, spec, score), f"fp-{model}", spec)[1]


def test_rows_carry_provenance(tiny_spec):
    rows = _rows("m", tiny_spec, 0.9)
    for column in (
        "model",
        "model_fingerprint",
        "spec_name",
        "spec_hash",
        "eps",
        "threshold",
        "score",
        "best_eps",
        "synbench_version",
        "torch_version",
        "timm_version",
        "device",
        "dtype",
        "created_at",
        "code_version",
    ):
        assert column in rows.columns
    assert len(rows) == 2 * 4 and (rows["spec_hash"] == tiny_spec.spec_hash).all()


def test_republishing_adds_no_row(root, tiny_spec):
    path, written = _put(root, _rows("m", tiny_spec, 0.9), "fp-m", tiny_spec)
    before = path.stat().st_mtime_ns
    assert written and not _put(root, _rows("m", tiny_spec, 0.9), "fp-m", tiny_spec)[1]
    assert path.stat().st_mtime_ns == before and len(read_board(root)) == 8


@pytest.mark.slow
def test_eight_concurrent_publishers_lose_and_duplicate_nothing(root):
    jobs = [(str(root), f"model{i % 6}", 0.5 + i / 100) for i in range(8)]  # two keys published twice
    with multiprocessing.get_context("spawn").Pool(8) as pool:
        written = pool.map(publish_one, jobs)
    parts = sorted((root / "leaderboard" / "parts").glob("*.parquet"))
    assert len(parts) == 6 and sum(written) >= 6
    assert all(pq.read_table(p).num_rows == 4 for p in parts)
    board = read_board(root)
    assert len(board) == 6 * 4 and not board.duplicated(["model_fingerprint", "eps", "threshold"]).any()
    assert not list((root / "leaderboard" / "parts").glob(".*"))
    snapshot = pd.read_parquet(write_snapshot(root))
    assert len(snapshot) == 24 and set(snapshot["rank"]) == set(range(1, 7))


def test_readers_union_schemas_and_skip_damaged_parts(root, tiny_spec, capsys):
    _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    newer = _rows("b", tiny_spec, 0.8).assign(extra_column="new")
    _put(root, newer, "fp-b", tiny_spec)
    (root / "leaderboard" / "parts" / "broken.parquet").write_bytes(b"PAR1 not really")
    board = read_board(root)
    assert len(board) == 16 and board["extra_column"].isna().sum() == 8
    assert "skipped unreadable leaderboard part" in capsys.readouterr().err


def test_snapshots_rank_within_each_spec_and_record_rank_changes(root, tiny_spec):
    _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    _put(root, _rows("b", tiny_spec, 0.8), "fp-b", tiny_spec)
    write_snapshot(root)
    other = BenchmarkSpec.from_dict({**tiny_spec.to_dict(), "name": "other", "n_train": 128})
    assert other.spec_hash != tiny_spec.spec_hash
    _put(root, _rows("c", tiny_spec, 0.95).assign(model_fingerprint="fp-c"), "fp-c", tiny_spec)
    _put(root, _rows("d", other, 0.99).assign(model_fingerprint="fp-d"), "fp-d", other)
    latest = pd.read_parquet(write_snapshot(root))
    at = latest[(latest["eps"] == 0) & (latest["threshold"] == 0.6)].set_index("model")
    assert at.loc["b", "rank"] == 3 and at.loc["b", "rank_change"] == -1
    assert at.loc["c", "rank"] == 1 and pd.isna(at.loc["c", "rank_change"])
    assert at.loc["d", "rank"] == 1 and at.loc["d", "spec_hash"] == other.spec_hash  # its own spec's board


@pytest.mark.parametrize("fmt", ["json", "csv", "table", "html"])
def test_formats(root, tiny_spec, fmt):
    _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    board = read_board(root, eps=[0.0], threshold=[0.6])
    text = board_html(board, {}) if fmt == "html" else format_board(board, fmt)
    if fmt == "json":
        records = json.loads(text)
        assert len(records) == 1 and {"model", "eps", "threshold", "score", "spec_hash", "model_fingerprint"} <= set(
            records[0]
        )
        assert records[0]["score"] == pytest.approx(0.9)
    elif fmt == "csv":
        assert text.splitlines()[0].startswith("model,") and len(text.splitlines()) == 2
    elif fmt == "table":
        assert "0.9000 (eps 0)" in text and "t=0.6" in text
    else:
        assert text.startswith("<!doctype html>") and "http://" not in text and "https://" not in text


def test_arrow_table_roundtrip_keeps_types(root, tiny_spec):
    path, _ = _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    schema = pq.read_schema(path)
    assert schema.field("score").type == pa.float64() and schema.field("best_eps").type == pa.bool_()


def test_history_lists_snapshots_and_rank_changes(root, tiny_spec):
    from synbench.board.tables import format_history

    assert "No snapshots yet" in format_history(root)
    _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    write_snapshot(root)
    _put(root, _rows("b", tiny_spec, 0.95), "fp-b", tiny_spec)
    write_snapshot(root)
    records = json.loads(format_history(root, "json", eps=[0.0]))
    a_row = next(r for r in records if r["model"] == "a" and r["threshold"] == 0.6)
    assert a_row["rank"] == 2 and a_row["rank_change"] == "-1" and len(records) == 2 * 4
    b_row = next(r for r in records if r["model"] == "b" and r["threshold"] == 0.6)
    assert b_row["rank"] == 1 and b_row["rank_change"] == "new"
    only = json.loads(format_history(root, "json", eps=[0.0], threshold=[0.7]))
    assert {r["threshold"] for r in only} == {0.7} and len(only) == 2
    assert "2 snapshot(s)" in format_history(root)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows.assign(created_at=1), "column created_at is int64, expected a string"),
        (lambda rows: rows.assign(score=rows["score"].map(str)), "column score is string, expected a float"),
        (lambda rows: rows.drop(columns="model_fingerprint"), "it has no model_fingerprint column"),
        (lambda rows: rows.assign(spec_hash=None), "column spec_hash is null, expected a string"),
        (lambda rows: rows.assign(ci_replicates="forty"), "column ci_replicates is string, expected an integer"),
    ],
)
def test_a_part_off_the_schema_is_skipped_with_a_warning_and_never_takes_the_board_down(
    root, tiny_spec, capsys, change, message
):
    from synbench.cli.main import main
    from synbench.store.parquet import atomic_write_parquet

    _put(root, _rows("a", tiny_spec, 0.9), "fp-a", tiny_spec)
    planted = change(_rows("b", tiny_spec, 0.95).assign(ci_replicates=0))
    atomic_write_parquet(root / "leaderboard" / "parts" / "planted.parquet", planted)  # its digest is right
    board = read_board(root)
    assert set(board["model"]) == {"a"} and len(board) == 8
    err = capsys.readouterr().err
    assert "skipped leaderboard part" in err and "planted.parquet" in err and message in err
    assert main(["leaderboard", "--root", str(root)]) == 0 and "│ a " in capsys.readouterr().out
