import numpy as np
import pytest
from conftest import H4_AIMS_OUT, need

from aims_io.aimsout import HARTREE_EV, parse_aims_out, parse_aims_out_text
from aims_io.errors import AimsIOError
from aims_io.floats import read_floats


def test_read_floats_accepts_d_and_e_exponents(tmp_path):
    p = tmp_path / "v.out"
    p.write_text("  1.5D+00\n -2.0E-01\n3\n  4.25d1 5\n")
    np.testing.assert_array_equal(read_floats(p), [1.5, -0.2, 3.0, 42.5, 5.0])
    with pytest.raises(AimsIOError, match="more than the expected 4 values"):
        read_floats(p, expected=4)


@pytest.mark.parametrize(
    "bad, message",
    [("1.0\nNaN\n", "not finite"), ("1.0\n*****\n", "'\\*\\*\\*\\*\\*' is not a number"), ("1.0\ninf\n", "not finite")],
)
def test_read_floats_refuses_non_numbers(tmp_path, bad, message):
    p = tmp_path / "v.out"
    p.write_text(bad)
    with pytest.raises(AimsIOError, match=message) as err:
        read_floats(p)
    assert str(p) in str(err.value)


def test_read_floats_missing_file(tmp_path):
    with pytest.raises(AimsIOError, match="missing file"):
        read_floats(tmp_path / "nope.out")


def test_parse_real_aims_out_h4():
    out = parse_aims_out(need(H4_AIMS_OUT))
    assert out.version == "191029" and out.version_number == 191029
    assert out.commit == "GITDIR-NOTFOUND"
    assert out.n_atoms == 4 and out.n_spin == 1
    assert out.n_integration_points == 18960 and out.n_integration_points_nonzero == 17324
    assert out.n_auxiliary is None  # no RI in this run
    assert out.scf_converged and out.scf_cycles == 15
    assert out.total_energy_ev == pytest.approx(-63.484026439, abs=1e-12)
    assert out.energy_ha == pytest.approx(-63.484026439 / 27.211386245988, rel=1e-14)
    assert out.homo_ev == pytest.approx(-10.19548597) and out.lumo_ev == pytest.approx(1.09057806)
    assert out.fermi_ev == pytest.approx(-3.15386619)
    assert out.hartree_ev_used == pytest.approx(27.2113845)
    assert out.timings["Total time"] == (3.194, 3.580)
    assert out.wall_time_s == 3.580
    assert out.finished


def test_truncated_aims_out_is_not_finished():
    text = need(H4_AIMS_OUT).read_text()
    cut = text[: text.index("Have a nice day.")]
    out = parse_aims_out_text(cut)
    assert not out.finished and out.version == "191029"
    assert not parse_aims_out_text(text[: len(text) // 2]).finished


def test_hartree_constant():
    assert HARTREE_EV == 27.211386245988
