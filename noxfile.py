"""Sessions: one test session per package, lint, the whole suite, the quickstart, benchmarks.

    python3 -m nox -s tests          # every package's tests and the cross-package tests
    python3 -m nox -s quickstart     # PySCF data -> training -> prediction -> evaluation
    python3 -m nox -s rho-data       # one package (rho-data, pyscf-io, aims-io, rho-model, rho-eval)
    python3 -m nox -s lint
    python3 -m nox -s benchmarks     # how fast each stage is (benchmarks/run_all.py)
    python3 -m nox -s metatrain      # rho-data -> metatrain (mtt train/eval) -> rho-eval, own environment

Every install goes through constraints.txt, which pins torch==2.13.0 (CPU build): an
unpinned torch would pull several GB of CUDA packages.
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
CONSTRAINTS = str(ROOT / "constraints.txt")
PACKAGES = ["rho-data", "pyscf-io", "aims-io", "rho-model", "rho-eval"]
#: Test extras and the siblings each package's tests need, installed from their local paths.
TEST_REQUIREMENTS = {
    "rho-data": ["packages/rho-data[metatensor,torch,test]"],
    "pyscf-io": ["packages/rho-data", "packages/pyscf-io[test]"],
    "aims-io": ["packages/rho-data[metatensor]", "packages/aims-io[test]"],
    "rho-model": ["packages/rho-data[metatensor]", "packages/rho-model[test]"],
    "rho-eval": ["packages/rho-data", "packages/pyscf-io", "packages/aims-io", "packages/rho-eval[test]"],
}
ALL = [
    "packages/rho-data[metatensor,torch,test]",
    "packages/pyscf-io[test]",
    "packages/aims-io[test]",
    "packages/rho-model[test]",
    "packages/rho-eval[test]",
    "pytest>=7",
]
ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


def install(session: nox.Session, *requirements: str) -> None:
    """pip install with the torch pin; local packages in editable mode."""
    args = []
    for requirement in requirements:
        args += ["-e", requirement] if requirement.startswith("packages/") else [requirement]
    session.install("-c", CONSTRAINTS, *args)


for _package in PACKAGES:

    @nox.session(name=_package)
    def package_tests(session: nox.Session, package: str = _package) -> None:
        install(session, *TEST_REQUIREMENTS[package])
        with session.chdir(ROOT / "packages" / package):
            session.run("python", "-m", "pytest", "-q", "-rs", *session.posargs, env=ENV)


@nox.session
def tests(session: nox.Session) -> None:
    """Every package's tests (slow ones included) and the cross-package tests, in one environment.

    A failing package does not stop the others: every suite runs, then the session lists
    each one that failed and fails itself.
    """
    install(session, *ALL)
    suites = [(package, ROOT / "packages" / package, []) for package in PACKAGES]
    suites.append(("cross-package", ROOT, ["tests"]))
    failed = []
    for name, where, args in suites:
        with session.chdir(where):
            try:
                session.run("python", "-m", "pytest", "-q", "-rs", *args, *session.posargs, env=ENV)
            except nox.command.CommandFailed:
                failed.append(name)
    if failed:
        session.error(f"tests failed in: {', '.join(failed)}")


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "packages", "tests", "examples", "benchmarks", "noxfile.py")
    session.run("ruff", "format", "--check", "packages", "tests", "examples", "benchmarks", "noxfile.py")


@nox.session
def quickstart(session: nox.Session) -> None:
    """The main job on the embedded default: PySCF reference data, training, prediction, evaluation."""
    install(session, *ALL)
    session.run("python", "examples/quickstart.py", *session.posargs, env=ENV)


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Every stage's speed as one markdown table (benchmarks/run_all.py)."""
    install(session, *ALL)
    session.run("python", "benchmarks/run_all.py", *session.posargs, env=ENV)


#: metatrain needs metatensor-learn < 0.6 (rho-model uses 0.6), so it gets an environment of its own.
METATRAIN = "metatrain[soap-bpnn]==2026.4.1"


@nox.session
def metatrain(session: nox.Session) -> None:
    """export --format metatrain / import metatrain tests, then the round trip (benchmarks/metatrain_roundtrip.py).

    pyscf-io makes a small dataset, SOAP-BPNN trains for a few epochs on CPU with mtt train,
    mtt eval predicts the test part, rho-data import metatrain and rho-eval report its %NMAE.
    """
    install(session, "packages/rho-data[metatensor,test]", "packages/pyscf-io", "packages/rho-eval", METATRAIN)
    with session.chdir(ROOT / "packages" / "rho-data"):
        session.run("python", "-m", "pytest", "-q", "-rs", "tests/test_metatrain.py", "tests/test_metatrain_export.py", env=ENV)
    output = Path(session.create_tmp()) / "metatrain-roundtrip"
    session.run("python", "benchmarks/metatrain_roundtrip.py", "--output", str(output), *session.posargs, env=ENV)
