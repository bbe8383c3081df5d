import subprocess
import sys

import pytest

from synbench.core.errors import SpecError
from synbench.core.spec import PRESETS, BenchmarkSpec, load_spec


def test_presets_match_the_method():
    paper, quick = PRESETS["paper"], PRESETS["quick"]
    assert len(paper.scales) == 49 and paper.scales[0] == 0.1 and paper.scales[-1] == 4.9
    assert (paper.n_train, paper.n_test) == (2048, 2048)
    assert paper.eps == (0.0, 0.1, 0.2, 0.3, 0.4, 0.5) and paper.thresholds == (0.6, 0.7, 0.8, 0.9)
    assert len(quick.scales) == 25 and quick.scales[1] == 0.3 and (quick.n_train, quick.n_test) == (1024, 1024)
    assert quick.eps == paper.eps


def test_spec_hash_is_stable_across_processes():
    code = "from synbench.core.spec import load_spec; s = load_spec('quick'); print(s.spec_hash, s.data_hash)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    spec = load_spec("quick")
    assert out == [spec.spec_hash, spec.data_hash]


@pytest.mark.parametrize(
    "change, data_changes",
    [
        ({"scales": (0.1, 2.0)}, True),
        ({"n_train": 512}, True),
        ({"n_test": 512}, True),
        ({"seed": 1}, True),
        ({"block_size": 128}, True),
        ({"input_shape": (3, 32, 32)}, True),
        ({"eps": (0.0,)}, False),
        ({"thresholds": (0.6,)}, False),
        ({"eigen_floor": "absolute"}, False),
        ({"covariance": "natural"}, True),
    ],
)
def test_every_result_field_changes_the_hash(change, data_changes):
    base = load_spec("quick")
    changed = BenchmarkSpec.from_dict({**base.to_dict(), **change})
    assert changed.spec_hash != base.spec_hash
    assert (changed.data_hash != base.data_hash) is data_changes


def test_input_shapes_of_any_rank_and_image_hashes_as_before(tmp_path):
    for shape in [(256,), (2, 128), (16, 8), (3, 32, 32), (3, 8, 16, 16)]:
        assert load_spec("quick", input_shape=shape).input_shape == shape
    path = tmp_path / "signal.toml"
    path.write_text("input_shape = 256\n")
    assert load_spec(path).input_shape == (256,)
    flat, image = load_spec("quick", input_shape=(256,)), load_spec("quick", input_shape=(1, 16, 16))
    assert flat.data_hash != image.data_hash  # the spec records the shape it was run with
    # stored features of image specs stay valid: a 3-axis shape hashes exactly as before any rank was allowed
    assert load_spec("quick", input_shape=(3, 32, 32)).data_hash == "d2efa01eac4f85fc"
    assert load_spec("demo", input_shape=(1, 8, 8)).spec_hash == "ef7a8beb5b283d49"  # score version 3


def test_the_covariance_field_hashes_only_where_it_is_not_the_default(tmp_path):
    # the isotropic default leaves every hash made before the field existed as it was (stored roots stay valid)
    assert (PRESETS["paper"].spec_hash, PRESETS["paper"].data_hash) == ("6d49ac847800bccf", "afc465d2f93d65bd")
    assert (PRESETS["demo"].spec_hash, PRESETS["demo"].data_hash) == ("7c97492f21feb3ae", "09eee68643f3bad4")
    # and so do the spec dicts stored in recipes and feature attributes: no key that was not there before
    assert "covariance" not in PRESETS["demo"].to_dict() and len(PRESETS["demo"].to_dict()) == 11
    path = tmp_path / "natural.toml"
    path.write_text('base = "demo"\ncovariance = "natural"\n')
    natural = load_spec(path)
    assert natural.spectrum_exponent == 2.0 and BenchmarkSpec.from_dict(natural.to_dict()) == natural
    assert natural.to_dict()["covariance"] == "natural"
    assert natural.data_hash not in ("09eee68643f3bad4",) and natural.spec_hash != PRESETS["demo"].spec_hash
    steeper = BenchmarkSpec.from_dict({**natural.to_dict(), "spectrum_exponent": 3})
    assert steeper.data_hash != natural.data_hash and steeper.spec_hash != natural.spec_hash
    assert BenchmarkSpec.from_dict({**natural.to_dict(), "spectrum_exponent": None}) == natural  # 2 by default


def test_name_and_eps_order_do_not_change_the_hash():
    base = load_spec("quick")
    renamed = BenchmarkSpec.from_dict({**base.to_dict(), "name": "other", "eps": list(reversed(base.eps))})
    assert renamed.spec_hash == base.spec_hash


def test_spec_file_overrides_its_base(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('base = "paper"\nn_train = 256\neps = [0, 0.3]\n')
    spec = load_spec(path)
    assert spec.name == "mine" and spec.n_train == 256 and spec.n_test == 2048 and spec.eps == (0.0, 0.3)
    yaml_path = tmp_path / "mine.yaml"
    yaml_path.write_text("scales: [0.5, 2.0]\nseed: 3\n")
    assert load_spec(yaml_path).scales == (0.5, 2.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"eps": (1.0,)}, r"eps must lie in \[0, 1\).*--eps"),
        ({"eps": (-0.1,)}, r"eps must lie in \[0, 1\)"),
        ({"n_train": 4}, r"n_train must be an integer in \[8, 1000000\]"),
        ({"n_train": 10**12}, r"n_train must be an integer in \[8, 1000000\]"),
        ({"scales": ()}, r"scales must list 1 to 1000 positive numbers"),
        ({"scales": tuple(range(1, 2000))}, r"scales must list 1 to 1000 positive numbers; got 1999"),
        ({"scales": (0.0, 1.0)}, r"positive numbers"),
        ({"thresholds": (0.4,)}, r"thresholds must list 1 to 64 values in \[0.6, 1\)"),
        ({"input_shape": (3, 0)}, r"input_shape must be 1 to 8 positive integers .* got \[3, 0\]"),
        ({"input_shape": ()}, r"input_shape must be 1 to 8 positive integers"),
        ({"input_shape": (1,) * 9}, r"input_shape must be 1 to 8 positive integers"),
        ({"input_shape": (2**15, 2**15)}, r"at most 268435456 values in all"),
        ({"input_shape": ("a", 3)}, r"input_shape must list integers"),
        ({"scales": (0.1, 0.2)}, r"threshold 0.6 is out of reach: the largest scale 0.2 .* add a scale above 0.25"),
        ({"class_prior": 0.3}, r"class_prior 0.3 is not supported.*use class_prior = 0.5"),
        ({"eigen_floor": "none"}, r"eigen_floor must be one of relative, absolute"),
        ({"name": "x" * 100}, r"spec name .* must be 1-64 letters"),
        ({"covariance": "pink"}, r"covariance must be one of isotropic, natural; got 'pink'"),
        ({"spectrum_exponent": 1.0}, r"spectrum_exponent 1.0 applies to covariance = 'natural' only; remove it"),
        ({"covariance": "natural", "spectrum_exponent": 5}, r"spectrum_exponent must lie in \[0, 4\]; got 5"),
        ({"covariance": "natural", "spectrum_exponent": "steep"}, r"spectrum_exponent must be a number"),
    ],
)
def test_validation_names_the_fault_and_fix(overrides, message):
    with pytest.raises(SpecError, match=message):
        load_spec("quick", **overrides)


@pytest.mark.parametrize(
    "text, suffix, message",
    [
        ("n_trian = 3\n", ".toml", r"unknown spec field\(s\) \['n_trian'\] in .*; valid fields are"),
        ("n_train = [\n", ".toml", r"is not valid toml"),
        ("- 1\n- 2\n", ".yaml", r"must hold a mapping"),
        ('base = "huge"\n', ".toml", r"base 'huge' is not a preset"),
        ("base: [demo]\n", ".yaml", r"base \['demo'\] is not a preset"),
        ("a: &a [x, x, x]\nname: &b [*a, *a, *a]\n", ".yaml", r"unknown spec field"),
        ("name: [1, 2]\n", ".yaml", r"spec name .* must be"),
    ],
)
def test_bad_spec_files(tmp_path, text, suffix, message):
    path = tmp_path / f"spec{suffix}"
    path.write_text(text)
    with pytest.raises(SpecError, match=message):
        load_spec(path)


def test_missing_and_unknown_spec(tmp_path):
    with pytest.raises(SpecError, match="cannot read spec file.*check the path"):
        load_spec(tmp_path / "absent.toml")
    with pytest.raises(SpecError, match=r"unknown spec 'fast'; use a preset \(paper, quick, demo\)"):
        load_spec("fast")
