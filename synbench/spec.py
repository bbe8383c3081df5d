"""Benchmark spec: which synthetic tasks, how many samples, which eps and thresholds.

The spec is a frozen dataclass. Two hashes name what is derived from it:
``data_hash`` covers the fields that change the generated inputs (and hence the
stored features); ``spec_hash`` covers every field that changes a score.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError

__all__ = ["BenchmarkSpec", "PRESETS", "GENERATOR_VERSION", "load_spec", "parse_eps"]

# Bump when the generator's output for a given spec changes (invalidates stored features).
GENERATOR_VERSION = 1
# Bump when probe or score results for given features change.
SCORE_VERSION = 1

_DATA_FIELDS = ("scales", "n_train", "n_test", "class_prior", "seed", "block_size", "input_shape")


def _scale_grid(start: float, stop: float, step: float) -> tuple[float, ...]:
    count = int(round((stop - start) / step)) + 1
    return tuple(round(start + i * step, 10) for i in range(count))


@dataclass(frozen=True)
class BenchmarkSpec:
    """What one benchmark computes (METHOD.md sections 1 and 4)."""

    name: str = "custom"  # label only; not part of any hash
    scales: tuple[float, ...] = _scale_grid(0.1, 4.9, 0.1)  # ||mu_s||, one task each
    n_train: int = 2048  # samples in each task's train split
    n_test: int = 2048  # samples in each task's test split
    class_prior: float = 0.5  # P(y = 1), tau in METHOD.md
    eps: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)  # robustness levels of the probe
    thresholds: tuple[float, ...] = (0.6, 0.7, 0.8, 0.9)  # accuracy thresholds t reported
    seed: int = 0  # root of every random stream
    block_size: int = 256  # samples per generated block (and per stored chunk)
    input_shape: tuple[int, int, int] | None = None  # (C, H, W) override of the model's own

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        # eps and thresholds are sets: their order must not change a hash
        object.__setattr__(self, "eps", tuple(sorted({float(e) for e in self.eps})))
        object.__setattr__(self, "thresholds", tuple(sorted({float(t) for t in self.thresholds})))
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(v) for v in self.input_shape))
        self._validate()

    def _validate(self) -> None:
        if not self.scales or any(not math.isfinite(s) or s <= 0 for s in self.scales):
            raise SpecError(
                f"scales must be a non-empty list of positive numbers; got {list(self.scales)}. "
                "Use e.g. scales = [0.1, 0.5, 1.0]."
            )
        for split in ("n_train", "n_test"):
            value = getattr(self, split)
            if not isinstance(value, int) or value < 8:
                raise SpecError(f"{split} must be an integer >= 8; got {value!r}. Use e.g. 1024.")
        if not 0 < self.class_prior < 1:
            raise SpecError(f"class_prior must lie in (0, 1); got {self.class_prior}. Use 0.5.")
        if not self.eps:
            raise SpecError("eps must list at least one value; use e.g. eps = [0, 0.2].")
        for e in self.eps:
            if not 0 <= e < 1:
                raise SpecError(
                    f"eps must lie in [0, 1); got {e:g} "
                    "(eps >= 1 makes the robust probe degenerate). Use e.g. --eps 0,0.2."
                )
        if not self.thresholds or any(not 0.5 <= t <= 1 for t in self.thresholds):
            raise SpecError(
                f"thresholds must lie in [0.5, 1]; got {list(self.thresholds)}. "
                "Use e.g. thresholds = [0.6, 0.7, 0.8, 0.9]."
            )
        if not isinstance(self.seed, int) or self.seed < 0:
            raise SpecError(f"seed must be a non-negative integer; got {self.seed!r}.")
        if not isinstance(self.block_size, int) or self.block_size < 8:
            raise SpecError(f"block_size must be an integer >= 8; got {self.block_size!r}.")
        if self.input_shape is not None and (len(self.input_shape) != 3 or min(self.input_shape) < 1):
            raise SpecError(
                f"input_shape must be three positive integers C, H, W; got {self.input_shape}. "
                "Use e.g. input_shape = [3, 32, 32]."
            )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (round-trips through ``from_dict``)."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchmarkSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(f"unknown spec field(s) {unknown}; valid fields are: {', '.join(sorted(known))}.")
        values = dict(data)
        for key in ("scales", "eps", "thresholds", "input_shape"):
            if key in values and values[key] is not None:
                if isinstance(values[key], (int, float)):
                    values[key] = [values[key]]
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as exc:  # e.g. a string where a list was expected
            raise SpecError(f"invalid spec value: {exc}.") from None

    def _hash(self, fields: tuple[str, ...], version: str) -> str:
        payload = {k: v for k, v in self.to_dict().items() if k in fields}
        payload["version"] = version
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def data_hash(self) -> str:
        """Content hash of the fields that change the generated inputs."""
        return self._hash(_DATA_FIELDS, f"gen{GENERATOR_VERSION}")

    @property
    def spec_hash(self) -> str:
        """Content hash of every field that changes a result."""
        fields = _DATA_FIELDS + ("eps", "thresholds")
        return self._hash(fields, f"gen{GENERATOR_VERSION}-score{SCORE_VERSION}")

    def n_blocks(self, split: str) -> int:
        n = self.n_train if split == "train" else self.n_test
        return -(-n // self.block_size)


PRESETS: dict[str, BenchmarkSpec] = {
    "paper": BenchmarkSpec(name="paper"),
    "quick": BenchmarkSpec(name="quick", scales=_scale_grid(0.1, 4.9, 0.2), n_train=1024, n_test=1024),
    # Small enough for the offline demo on 2 CPU cores.
    "demo": BenchmarkSpec(name="demo", scales=_scale_grid(0.1, 4.9, 0.4), n_train=512, n_test=512),
}


def parse_eps(text: str) -> tuple[float, ...]:
    """Parse ``"0,0.2"`` into ``(0.0, 0.2)``."""
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise SpecError(f"could not read eps list {text!r}; use comma-separated numbers like 0,0.2.") from None


def _read_spec_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec file {str(path)!r}: {exc.strerror}; check the path.") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0]
        raise SpecError(f"spec file {str(path)!r} is not valid {path.suffix[1:] or 'YAML'}: {first}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError(f"spec file {str(path)!r} must hold a mapping of fields; got {type(data).__name__}.")
    return data


def load_spec(name_or_path: str | Path = "quick", **overrides: Any) -> BenchmarkSpec:
    """Return a preset by name, or a spec file (YAML/TOML) applied over its ``base`` preset.

    A spec file may set ``base = "paper"`` (default ``quick``) and override any field.
    Keyword overrides whose value is ``None`` are ignored.
    """
    text = str(name_or_path)
    if text in PRESETS:
        data = PRESETS[text].to_dict()
    else:
        path = Path(text)
        if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
            raise SpecError(f"unknown spec {text!r}; use a preset ({', '.join(PRESETS)}) or a .toml/.yaml spec file.")
        file_data = _read_spec_file(path)
        base = file_data.pop("base", "quick")
        if base not in PRESETS:
            raise SpecError(f"spec file base {base!r} is not a preset; use one of {', '.join(PRESETS)}.")
        data = PRESETS[base].to_dict()
        data["name"] = path.stem
        unknown = sorted(set(file_data) - set(data))
        if unknown:
            raise SpecError(
                f"unknown spec field(s) {unknown} in {text!r}; valid fields are: {', '.join(sorted(data))}."
            )
        data.update(file_data)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return BenchmarkSpec.from_dict(data)
