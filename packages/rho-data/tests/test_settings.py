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
