"""rho_data.yaml_input: hostile YAML is refused in one line, quickly; user values are shown bounded."""

from __future__ import annotations

import resource
import time

import pytest

from rho_data import RhoDataError
from rho_data.yaml_input import MAX_BYTES, MAX_DEPTH, load_yaml_file, parse_yaml_text, short_repr

BILLION_LAUGHS = """
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def test_plain_settings_load():
    assert parse_yaml_text("a: 1\nb: [x, 2.5, true]\nc: {d: null}\n") == {"a": 1, "b": ["x", 2.5, True], "c": {"d": None}}


def test_billion_laughs_is_refused_quickly_without_memory(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(RhoDataError, match=r"line 3\): aliases \(\*name\) are not allowed") as err:
        load_yaml_file(path)
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB
    assert one_line(err).startswith(str(path))


def test_merge_keys_need_aliases_and_are_refused():
    with pytest.raises(RhoDataError, match="aliases"):
        parse_yaml_text("base: &base {a: 1}\nderived:\n  <<: *base\n")


def test_deep_nesting_is_refused():
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_yaml_text(ok) is not None
    for depth in (MAX_DEPTH + 2, 100_000):
        with pytest.raises(RhoDataError, match=f"nesting deeper than {MAX_DEPTH} levels") as err:
            parse_yaml_text("[" * depth + "]" * depth, source="deep.yaml")
        assert one_line(err).startswith("deep.yaml")
    block = "".join("  " * k + f"k{k}:\n" for k in range(MAX_DEPTH + 5)) + "  " * (MAX_DEPTH + 5) + "v: 1\n"
    with pytest.raises(RhoDataError, match="nesting deeper"):
        parse_yaml_text(block)


def test_oversized_files_and_devices_are_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * MAX_BYTES + "\n")
    with pytest.raises(RhoDataError, match="larger than 1024 KiB") as err:
        load_yaml_file(path)
    assert one_line(err).startswith(str(path))
    with pytest.raises(RhoDataError, match="larger than"):
        parse_yaml_text("a: " + "x" * MAX_BYTES)
    start = time.perf_counter()
    with pytest.raises(RhoDataError, match="larger than"):
        load_yaml_file("/dev/zero")  # no size: the read itself is bounded
    assert time.perf_counter() - start < 2.0


def test_non_utf8_directory_missing_and_bad_yaml(tmp_path):
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes("name: Méthane\n".encode("latin-1"))
    with pytest.raises(RhoDataError, match=r"is not UTF-8 text \(byte 7\)") as err:
        load_yaml_file(latin)
    assert one_line(err).startswith(str(latin))
    with pytest.raises(RhoDataError, match="is a directory") as err:
        load_yaml_file(tmp_path)
    one_line(err)
    with pytest.raises(RhoDataError, match="no such file") as err:
        load_yaml_file(tmp_path / "missing.yaml")
    one_line(err)
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\nb: 3\n")
    with pytest.raises(RhoDataError, match="not valid YAML") as err:
        load_yaml_file(bad)
    one_line(err)
    for text in ("a: !!python/object/apply:os.system ['echo pwned']", "a: \x00", "a: 1\n---\nb: 2\n", "a: " + "1" * 5000):
        with pytest.raises(RhoDataError, match="not valid YAML") as err:
            parse_yaml_text(text)
        one_line(err)


def test_short_repr_is_bounded_on_huge_values():
    huge = {"k": ["x" * 10_000_000] * 3, "n": 10**5000, "s": set(range(100_000)), "b": b"\x00" * 1_000_000}
    start = time.perf_counter()
    for value in (huge, list(range(10**6)), "y" * 10**7, 10**5000, b"z" * 10**6, set(range(10**5)), [[[[["deep"]]]]]):
        shown = short_repr(value)
        assert len(shown) <= 80, shown
    assert time.perf_counter() - start < 1.0
    assert short_repr(list(range(10**6))) == "<list of 1000000 items>"
    assert short_repr("abc") == "'abc'" and short_repr({"a": [1, 2]}) == "{'a': [1, 2]}"

    class Broken:
        def __repr__(self):
            raise RuntimeError("no repr")

    assert short_repr(Broken()) == "<Broken>"
