"""Stage 2: run an encoder over the synthetic blocks and store representations in Zarr.

One writer per (model fingerprint, data hash) group holds a lock. Each block of ``block_size`` samples is
generated on the extraction device, encoded, and written as one chunk; chunks already stored are skipped, so
a killed run resumes where it stopped with the same bytes. The manifest and ``complete`` are written last.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch
import zarr

from ..core.errors import DataError, SynBenchError
from ..core.provenance import utc_now, versions
from ..core.spec import SPLITS, BenchmarkSpec
from ..method.generate import block_inputs
from ..models.encoders import Encoder
from ..store.features import (
    chunk_key,
    create_feature_group,
    feature_arrays,
    feature_group_path,
    manifest_digest,
    missing_chunks,
    open_feature_group,
    values_digest,
)
from ..store.locks import writer_lock
from ..store.resources import check_resources
from ..store.roots import Location, is_remote, remove_tree

__all__ = ["ExtractResult", "extract_features", "resolve_device", "features_key"]

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# Called with (model reference, blocks done, blocks total) as extraction advances.
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ExtractResult:
    """What stage 2 left in the store."""

    key: str  # "<fingerprint>/<data_hash>", the features key
    path: Location  # the Zarr group
    written_chunks: int  # blocks encoded in this call
    skipped_chunks: int  # blocks found already stored
    device: str
    dtype: str


def features_key(fingerprint: str, data_hash: str) -> str:
    return f"{fingerprint}/{data_hash}"


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without it is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise SynBenchError(f"unknown device {device!r}; use auto, cpu or cuda.")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SynBenchError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu or auto.")
    return torch.device(device)


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(device)}"
    return f"cpu:{platform.machine()}"


class _BlockEncoder:
    """Encodes one block in micro-batches; halves the batch on CUDA out-of-memory."""

    def __init__(self, encoder: Encoder, device: torch.device, dtype: str, batch_size: int) -> None:
        self.encoder, self.batch_size = encoder, batch_size
        self.autocast = (
            torch.autocast(device_type=device.type, dtype=torch.bfloat16) if dtype == "bf16" else nullcontext()
        )

    def __call__(self, inputs: torch.Tensor) -> np.ndarray:
        while True:
            try:
                return self._encode(inputs)
            except torch.cuda.OutOfMemoryError:
                if self.batch_size == 1:
                    raise
                self.batch_size //= 2
                torch.cuda.empty_cache()

    def _encode(self, inputs: torch.Tensor) -> np.ndarray:
        parts = []
        with self.autocast:
            for start in range(0, len(inputs), self.batch_size):
                parts.append(self.encoder.represent(inputs[start : start + self.batch_size]).float())
        features = torch.cat(parts)
        if not torch.isfinite(features).all():
            raise DataError(
                f"encoder {self.encoder.ref.text!r} returned NaN or Inf features; "
                "check its weights (or try --dtype fp32)."
            )
        if features.shape[1] != self.encoder.feature_dim:
            raise DataError(
                f"encoder {self.encoder.ref.text!r} returned {features.shape[1]} features, "
                f"{self.encoder.feature_dim} in its trial run; it must return a fixed-size vector."
            )
        return features.cpu().numpy()


def _provenance(encoder: Encoder, spec: BenchmarkSpec, device: torch.device, dtype: str) -> dict:
    return {
        "spec": spec.to_dict(),
        "spec_hash": spec.spec_hash,
        "data_hash": spec.data_hash,
        "model": encoder.ref.text,
        "model_fingerprint": encoder.fingerprint,
        "architecture": encoder.architecture,
        "weights_digest": encoder.weights_digest,
        "layer": encoder.ref.layer,
        "preprocess": encoder.preprocess.to_dict(),
        "feature_dim": encoder.feature_dim,
        "device": _device_name(device),
        "dtype": dtype,
        "stored_dtype": "float32",
        "started_at": utc_now(),
        **versions(),
    }


def _finished(key: str, path: Location, total: int, group: zarr.Group) -> ExtractResult:
    return ExtractResult(key, path, 0, total, str(group.attrs.get("device")), str(group.attrs.get("dtype")))


def _remove_partials(path: Location) -> None:
    # zarr writes each local chunk to "<key>.<uuid>.partial" then renames it; a kill leaves these behind.
    # An object store has no such twin: a chunk is one PUT, visible whole or not at all.
    if not is_remote(path):
        for partial in path.rglob("*.partial"):
            partial.unlink(missing_ok=True)


def extract_features(
    encoder: Encoder,
    spec: BenchmarkSpec,
    root: Location,
    device: str = "auto",
    dtype: str = "fp32",
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
) -> ExtractResult:
    """Encode every block of every task and split into the store; resumable and idempotent."""
    if dtype not in DTYPES:
        raise SynBenchError(f"unknown dtype {dtype!r}; use fp32 or bf16.")
    torch_device = resolve_device(device)
    key = features_key(encoder.fingerprint, spec.data_hash)
    path = feature_group_path(root, encoder.fingerprint, spec.data_hash)
    existing = open_feature_group(root, encoder.fingerprint, spec.data_hash)
    total = sum(spec.n_blocks(split) for split in SPLITS) * len(spec.scales)
    if existing is not None and existing.attrs.get("complete"):
        return _finished(key, path, total, existing)
    check_resources(spec, encoder.preprocess.input_shape, encoder.feature_dim, root, encoder.ref.text)
    lock = path.parent / f".{spec.data_hash}.lock"
    try:
        with writer_lock(lock) as held:
            group = _open_for_writing(encoder, spec, root, torch_device, dtype)
            if group.attrs.get("complete"):  # another writer finished while we waited for the lock
                return _finished(key, path, total, group)
            _remove_partials(path)
            todo = _missing_blocks(group, spec)
            report = (lambda done: progress(encoder.ref.text, done, total)) if progress else (lambda done: None)
            report(total - len(todo))
            digests = _encode_blocks(encoder, spec, todo, torch_device, dtype, batch_size or spec.block_size, report)
            held.check()  # a writer that lost its lease to another must not mark the group complete
            _mark_complete(group, spec, digests)
    except DataError:
        if existing is None:  # our own half-made group of a bad encoder: leave nothing behind
            remove_tree(path)
            if not is_remote(path):
                lock.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # the model's folder, if nothing else is in it
                    path.parent.rmdir()
        raise
    return ExtractResult(key, path, len(todo), total - len(todo), str(group.attrs["device"]), dtype)


def _open_for_writing(
    encoder: Encoder, spec: BenchmarkSpec, root: Location, device: torch.device, dtype: str
) -> zarr.Group:
    sizes = {"train": spec.n_train, "test": spec.n_test}
    return create_feature_group(
        root,
        encoder.fingerprint,
        spec.data_hash,
        len(spec.scales),
        sizes,
        encoder.feature_dim,
        spec.block_size,
        _provenance(encoder, spec, device, dtype),
    )


# (scale index, split, block index, features array, labels array) of one block to encode
_Block = tuple[int, str, int, zarr.Array, zarr.Array]


def _missing_blocks(group: zarr.Group, spec: BenchmarkSpec) -> list[_Block]:
    todo = []
    for scale_index, split, features, labels in feature_arrays(group, len(spec.scales)):
        gaps = sorted(set(missing_chunks(features)) | set(missing_chunks(labels)))
        todo.extend((scale_index, split, block, features, labels) for block in gaps)
    return todo


def _encode_blocks(
    encoder: Encoder,
    spec: BenchmarkSpec,
    todo: list[_Block],
    device: torch.device,
    dtype: str,
    batch_size: int,
    report: Callable[[int], None],
) -> dict[str, str]:
    """Generate block k+1 and write block k-1 while block k runs through the encoder.

    Returns the digest of every chunk written, keyed by its place (the group's manifest).
    """
    digests: dict[str, str] = {}
    encoder.module.to(device)
    encode = _BlockEncoder(encoder, device, dtype, batch_size)
    side_stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    done = sum(spec.n_blocks(split) for split in SPLITS) * len(spec.scales) - len(todo)

    def generate(block: _Block):
        scale_index, split, block_index = block[:3]
        with torch.cuda.stream(side_stream) if side_stream else nullcontext():
            labels, inputs = block_inputs(spec, encoder.preprocess, scale_index, split, block_index, device)
            ready = torch.cuda.Event() if side_stream else None
            if ready is not None:
                ready.record(side_stream)
        return labels, inputs, ready

    def write(block: _Block, labels: np.ndarray, features: np.ndarray) -> None:
        _, _, block_index, feature_array, label_array = block
        rows = slice(block_index * spec.block_size, block_index * spec.block_size + len(labels))
        feature_array[rows] = features
        label_array[rows] = labels
        digests[chunk_key(feature_array, block_index)] = values_digest(features)
        digests[chunk_key(label_array, block_index)] = values_digest(labels)

    try:
        with ThreadPoolExecutor(1) as generator_pool, ThreadPoolExecutor(1) as writer_pool:
            pending_write: Future | None = None
            next_block = generator_pool.submit(generate, todo[0]) if todo else None
            for index, block in enumerate(todo):
                labels, inputs, ready = next_block.result()
                if index + 1 < len(todo):
                    next_block = generator_pool.submit(generate, todo[index + 1])
                if ready is not None:
                    main_stream = torch.cuda.current_stream(device)
                    main_stream.wait_event(ready)
                    inputs.record_stream(main_stream)  # made on the side stream, used on this one
                features = encode(inputs)
                if pending_write is not None:
                    pending_write.result()
                pending_write = writer_pool.submit(write, block, labels, features)
                done += 1
                report(done)
            if pending_write is not None:
                pending_write.result()
    finally:
        encoder.module.to("cpu")
    return digests


def _mark_complete(group: zarr.Group, spec: BenchmarkSpec, digests: dict[str, str]) -> None:
    """The manifest and the completion marker go last, after every chunk is checked to be on disk.

    Chunks written by an earlier (killed) run are read back for their digests.
    """
    manifest = {}
    for _, _, *arrays in feature_arrays(group, len(spec.scales)):
        for array in arrays:
            if missing_chunks(array):
                raise DataError(f"array {array.path!r} is still missing chunks after extraction; rerun it.")
            for index in range(array.cdata_shape[0]):
                key = chunk_key(array, index)
                if key not in digests:
                    rows = slice(index * spec.block_size, (index + 1) * spec.block_size)
                    digests[key] = values_digest(array[rows])
                manifest[key] = digests[key]
    done = {"complete": True, "completed_at": utc_now(), "written_chunks": len(digests) // 2}
    group.update_attributes({"chunk_digests": manifest, "content_digest": manifest_digest(manifest), **done})
