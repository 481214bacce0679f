"""rho_data.text_input.read_text: one-line errors naming the file."""

from __future__ import annotations

import pytest

from rho_data import RhoDataError
from rho_data.text_input import read_text


class OwnError(RhoDataError):
    pass


def test_reads_utf8_and_refuses_what_is_not_a_text_file(tmp_path):
    good = tmp_path / "a.txt"
    good.write_text("h\u00e9llo\n", encoding="utf-8")
    assert read_text(good) == "h\u00e9llo\n"
    with pytest.raises(RhoDataError, match=r"a\.txt: is larger than 0 KiB; a settings file is never this large"):
        read_text(good, what="settings file", max_bytes=3)
    with pytest.raises(OwnError, match="nope.txt: missing file"):
        read_text(tmp_path / "nope.txt", missing="missing file", error=OwnError)
    with pytest.raises(RhoDataError, match="is a directory, not a YAML file"):
        read_text(tmp_path, what="YAML file")
    latin = tmp_path / "l.txt"
    latin.write_bytes(b"ab\xe9")
    with pytest.raises(RhoDataError, match=r"is not UTF-8 text \(byte 2\)"):
        read_text(latin)
