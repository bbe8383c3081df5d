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
import operator
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .covariance import check_covariance
from .errors import SpecError
from .provenance import GENERATOR_VERSION, SCORE_VERSION

__all__ = [
    "BenchmarkSpec",
    "PRESETS",
    "SPLITS",
    "EIGEN_FLOORS",
    "MAX_INPUT_RANK",
    "MAX_INPUT_VALUES",
    "MIN_THRESHOLD",
    "threshold_ok",
    "load_spec",
    "parse_eps",
    "shape_text",
    "valid_shape",
]

SPLITS = ("train", "test")
EIGEN_FLOORS = ("relative", "absolute")  # METHOD.md section 3.3
_DATA_FIELDS = ("scales", "n_train", "n_test", "class_prior", "seed", "block_size", "input_shape")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
# Upper bounds that keep a spec from asking for unbounded work or metadata.
_MAX_SCALES, _MAX_SAMPLES, _MAX_BLOCK, _MAX_LEVELS = 1000, 1_000_000, 65536, 64
# An input shape has 1 to 8 axes and at most 2**28 values (the generator counts a block's draws in int32).
MAX_INPUT_RANK, MAX_INPUT_VALUES = 8, 2**28
MIN_THRESHOLD = 0.6  # the curves' accuracy grid (score.THRESHOLD_GRID) starts here: no lower t can be answered


def threshold_ok(value: float) -> bool:
    """Whether an accuracy threshold lies in [MIN_THRESHOLD, 1), where the curves can answer it."""
    return MIN_THRESHOLD - 1e-12 <= value < 1


def shape_text(shape: tuple[int, ...]) -> str:
    """``(2, 128)`` as ``2x128``: how references and messages write a shape."""
    return "x".join(str(v) for v in shape)


def valid_shape(shape: tuple[int, ...]) -> bool:
    """1 to MAX_INPUT_RANK positive integers with at most MAX_INPUT_VALUES values in all."""
    return 1 <= len(shape) <= MAX_INPUT_RANK and min(shape) >= 1 and math.prod(shape) <= MAX_INPUT_VALUES


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
    input_shape: tuple[int, ...] | None = None  # override of the model's own: (d,), (C, T), (C, H, W), ...
    eigen_floor: str = "relative"  # drop eigenvalues <= 1e-6 x largest ("relative") or <= 1e-6 ("absolute")
    covariance: str = "isotropic"  # noise: "isotropic" N(0, I) or "natural" 1/f^alpha with RGB correlation
    spectrum_exponent: float | None = None  # alpha of "natural" (2 when unset); None for "isotropic"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scales", tuple(float(s) for s in self.scales))
        # eps and thresholds are sets: their order must not change a hash
        object.__setattr__(self, "eps", tuple(sorted({float(e) for e in self.eps})))
        object.__setattr__(self, "thresholds", tuple(sorted({float(t) for t in self.thresholds})))
        if self.input_shape is not None:
            try:
                object.__setattr__(self, "input_shape", tuple(operator.index(v) for v in self.input_shape))
            except TypeError:
                raise SpecError(
                    f"input_shape must list integers; got {str(self.input_shape)[:60]}; use e.g. [2, 128]."
                ) from None
        self._validate()
        object.__setattr__(self, "spectrum_exponent", check_covariance(self.covariance, self.spectrum_exponent))

    def _validate(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise SpecError(
                f"spec name {str(self.name)[:40]!r} must be 1-64 letters, digits or _.+- (starting with a letter "
                "or digit); rename the spec file or set name = 'my-spec'."
            )
        if (
            not self.scales
            or len(self.scales) > _MAX_SCALES
            or any(not math.isfinite(s) or s <= 0 for s in self.scales)
        ):
            raise SpecError(
                f"scales must list 1 to {_MAX_SCALES} positive numbers; got {len(self.scales)} "
                f"(e.g. {list(self.scales[:3])}). Use e.g. scales = [0.1, 0.5, 1.0]."
            )
        for split in ("n_train", "n_test"):
            value = getattr(self, split)
            if not isinstance(value, int) or isinstance(value, bool) or not 8 <= value <= _MAX_SAMPLES:
                raise SpecError(f"{split} must be an integer in [8, {_MAX_SAMPLES}]; got {value!r}. Use e.g. 1024.")
        if self.class_prior != 0.5:
            raise SpecError(
                f"class_prior {self.class_prior} is not supported: the reference curve and the probe's threshold "
                "are derived for tau = 0.5 only; use class_prior = 0.5."
            )
        if not self.eps or len(self.eps) > _MAX_LEVELS:
            raise SpecError(f"eps must list 1 to {_MAX_LEVELS} values; use e.g. eps = [0, 0.2].")
        for e in self.eps:
            if not 0 <= e < 1:
                raise SpecError(
                    f"eps must lie in [0, 1); got {e:g} "
                    "(eps >= 1 makes the robust probe degenerate). Use e.g. --eps 0,0.2."
                )
        if not self.thresholds or len(self.thresholds) > _MAX_LEVELS or not all(map(threshold_ok, self.thresholds)):
            raise SpecError(
                f"thresholds must list 1 to {_MAX_LEVELS} values in [0.6, 1); got {list(self.thresholds)[:8]}. "
                "Use e.g. thresholds = [0.6, 0.7, 0.8, 0.9]."
            )
        self._check_thresholds_reachable()
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or not 0 <= self.seed < 2**62:
            raise SpecError(f"seed must be an integer in [0, 2**62); got {self.seed!r}.")
        if not isinstance(self.block_size, int) or not 8 <= self.block_size <= _MAX_BLOCK:
            raise SpecError(f"block_size must be an integer in [8, {_MAX_BLOCK}]; got {self.block_size!r}.")
        if self.input_shape is not None and not valid_shape(self.input_shape):
            raise SpecError(
                f"input_shape must be 1 to {MAX_INPUT_RANK} positive integers with at most {MAX_INPUT_VALUES} values "
                f"in all; got {list(self.input_shape)}. Use e.g. input_shape = [3, 32, 32] or [2, 128]."
            )
        if self.eigen_floor not in EIGEN_FLOORS:
            raise SpecError(f"eigen_floor must be one of {', '.join(EIGEN_FLOORS)}; got {self.eigen_floor!r}.")

    def _check_thresholds_reachable(self) -> None:
        """Every threshold needs a task whose Bayes accuracy Phi(s) passes a grid point >= t (METHOD.md 4)."""
        best_accuracy = 0.5 * (1 + math.erf(max(self.scales) / math.sqrt(2)))
        for t in self.thresholds:
            first_point = next(a for a in (0.6 + 0.4 * i / 99 for i in range(100)) if a >= t - 1e-12)
            if best_accuracy <= first_point:
                needed = math.sqrt(2) * _erfinv(2 * first_point - 1)
                raise SpecError(
                    f"threshold {t:g} is out of reach: the largest scale {max(self.scales):g} has Bayes accuracy "
                    f"{best_accuracy:.3f}, so the reference area is zero; add a scale above {needed:.2f}."
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of every field (round-trips through ``from_dict``); the isotropic default's
        covariance fields are left out, so recipes and feature attributes read as they did before them."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if self.covariance == "isotropic":
            del out["covariance"], out["spectrum_exponent"]
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

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
        # the isotropic default stays out of the payload: every hash made before the field existed still holds
        fields += ("covariance", "spectrum_exponent") if self.covariance != "isotropic" else ()
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
        fields = _DATA_FIELDS + ("eps", "thresholds", "eigen_floor")
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


def _erfinv(y: float) -> float:
    """Inverse error function by bisection (spec validation only; scipy is not needed here)."""
    low, high = 0.0, 10.0
    for _ in range(100):
        mid = (low + high) / 2
        low, high = (mid, high) if math.erf(mid) < y else (low, mid)
    return low


def parse_eps(text: str, what: str = "eps", example: str = "0,0.2") -> tuple[float, ...]:
    """Parse ``"0,0.2"`` into ``(0.0, 0.2)``; an empty item or a non-number is an error naming ``example``."""
    parts = [part.strip() for part in text.split(",")]
    try:
        if not all(parts):
            raise ValueError
        values = tuple(float(part) for part in parts)
    except ValueError:
        raise SpecError(f"could not read {what} list {text!r}; use comma-separated numbers like {example}.") from None
    if not all(math.isfinite(v) for v in values):
        raise SpecError(f"{what} list {text!r} holds a non-finite number; use numbers like {example}.")
    return values


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
        if not isinstance(base, str) or base not in PRESETS:
            raise SpecError(f"spec file base {base!r} is not a preset; use one of {', '.join(PRESETS)}.")
        data = PRESETS[base].to_dict()
        data["name"] = file_data.pop("name", path.stem)
        known = {f.name for f in dataclasses.fields(BenchmarkSpec)}
        if unknown := sorted(set(file_data) - known):
            raise SpecError(
                f"unknown spec field(s) {unknown} in {text!r}; valid fields are: {', '.join(sorted(known))}."
            )
        data.update(file_data)
    data.update({k: v for k, v in overrides.items() if v is not None})
    return BenchmarkSpec.from_dict(data)
