"""The strict settings merge every rho command uses (defaults -> files -> overrides)."""

import pytest

from rho_data import RhoDataError
from rho_data.settings import merge_settings, parse_override


def defaults():
    return {"dft": {"xc": "pbe", "spin": 0}, "workers": 1, "extra": {"a": 1}}


def test_nested_keys_merge_one_by_one():
    settings = defaults()
    merge_settings(settings, {"dft": {"xc": "b3lyp"}, "workers": 4})
    assert settings == {"dft": {"xc": "b3lyp", "spin": 0}, "workers": 4, "extra": {"a": 1}}


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"dft": {"xcc": "pbe"}}, r"unknown setting 'dft.xcc' \(known: spin, xc\)"),
        ({"worker": 2}, "unknown setting 'worker'"),
        ({"dft": "pbe"}, "setting 'dft' must be a mapping, got 'pbe'"),
    ],
)
def test_unknown_keys_and_non_mappings_are_errors(update, message):
    with pytest.raises(RhoDataError, match=message):
        merge_settings(defaults(), update)


def test_free_mappings_are_replaced_whole_and_check_sees_dotted_names():
    settings = defaults()
    seen = []

    def check(default, value, name):
        seen.append(name)
        return type(default)(value)

    merge_settings(settings, {"extra": {"b": 2}, "dft": {"spin": "1"}}, free=("extra",), check=check)
    assert settings["extra"] == {"b": 2} and settings["dft"]["spin"] == 1
    assert seen == ["extra", "dft.spin"]


def test_caller_chooses_the_error_and_the_noun():
    class OptionError(ValueError):
        pass

    with pytest.raises(OptionError, match="opts.yaml: unknown option 'fit.alhpa'"):
        merge_settings(
            {"fit": {"alpha": 1}}, {"fit": {"alhpa": 2}}, error=lambda m: OptionError(f"opts.yaml: {m}"), noun="option"
        )


def test_parse_override():
    assert parse_override("dft.xc=pbe", str.strip) == {"dft": {"xc": "pbe"}}
    assert parse_override("workers=", str.strip) == {"workers": None}
    for bad in ("dft.xc", "dft..xc=1", ".x=1"):
        with pytest.raises(RhoDataError, match="override"):
            parse_override(bad, str.strip)


def _merge(settings, update, source):
    def check(default, value, name):
        if not isinstance(value, type(default)):
            raise RhoDataError(f"{source}: setting '{name}' must be {type(default).__name__}, got {value!r}")
        return value

    merge_settings(settings, update, check=check, error=lambda m: RhoDataError(f"{source}: {m}"))


def test_load_layers_files_in_order_then_overrides(tmp_path):
    from rho_data.settings import load_layers

    first, second, empty = tmp_path / "a.yaml", tmp_path / "b.yaml", tmp_path / "empty.yaml"
    first.write_text("dft:\n  xc: b3lyp\nworkers: 2\n")
    second.write_text("workers: 3\n")
    empty.write_text("")
    base = defaults()
    settings = load_layers(base, [first, second, empty], ["dft.spin=2", "extra.a=7"], merge=_merge)
    assert settings == {"dft": {"xc": "b3lyp", "spin": 2}, "workers": 3, "extra": {"a": 7}}
    assert base == defaults()  # the defaults are copied, never changed


@pytest.mark.parametrize(
    ("files", "overrides", "message"),
    [
        (["missing.yaml"], [], r"missing.yaml: settings file not found"),
        (["list.yaml"], [], r"list.yaml: a settings file must hold a mapping of settings .*, got list"),
        (["typo.yaml"], [], r"typo.yaml: unknown setting 'dft.xcc'"),
        (["bad.yaml"], [], r"bad.yaml: setting 'workers' must be int, got 'two'"),
        ([], ["workers=two"], r"--set 'workers=two': setting 'workers' must be int, got 'two'"),
        ([], ["dft.spn=1"], r"--set 'dft.spn=1': unknown setting 'dft.spn'"),
        ([], ["workers"], r"--set 'workers': override 'workers' must look like section.key=value"),
        ([], ["workers=[&a 1, *a]"], r"--set 'workers=\[&a 1, \*a\]': not valid YAML .*aliases"),
    ],
)
def test_load_layers_errors_name_the_file_or_the_set(tmp_path, files, overrides, message):
    from rho_data.settings import load_layers

    (tmp_path / "list.yaml").write_text("- a\n")
    (tmp_path / "typo.yaml").write_text("dft:\n  xcc: pbe\n")
    (tmp_path / "bad.yaml").write_text("workers: two\n")
    with pytest.raises(RhoDataError, match=message):
        load_layers(defaults(), [tmp_path / f for f in files], overrides, merge=_merge)


def test_commented_yaml_parses_back_and_documents_every_leaf():
    import yaml

    from rho_data.settings import commented_yaml, leaf_comments

    values = {"dft": {"xc": "pbe", "tol": 1e-5, "moment": None}, "lines": [], "opts": {}, "free": {"a": 1}, "on": True}
    comments = {
        "dft": "electronic structure",
        "dft.xc": "functional",
        "dft.tol": "tolerance",
        "dft.moment": "initial moment",
        "lines": "shell lines",
        "opts": "options",
        "free": "a free mapping",
        "on": "a switch",
    }
    text = commented_yaml(values, comments, header="tool settings\n(defaults)", free=("free",))
    assert text.startswith("# tool settings\n# (defaults)\n")
    assert yaml.safe_load(text) == values
    assert leaf_comments(text) == {k: v for k, v in comments.items() if k != "dft"}
    with pytest.raises(ValueError, match="setting 'dft.xc' has no comment"):
        commented_yaml(values, {**comments, "dft.xc": ""})


def test_leaf_comments_reads_a_comment_line_above_and_finds_missing_ones():
    from rho_data.settings import leaf_comments

    text = "# header\nsection:\n  # the size\n  size: 3\n  name: x   # a name\n  bare: 1\nflow: {a: 1}  # flow\n"
    assert leaf_comments(text) == {"section.size": "the size", "section.name": "a name", "section.bare": "", "flow": "flow"}
