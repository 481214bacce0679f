"""SIGKILL each long-running command at random moments, then check what it left and rerun it.

    python benchmarks/kill_survival.py [--kills 20] [--seed 0] [--commands pyscf-io-run rho-eval] [--workdir DIR]

A small fixture is made once (9 perturbed H2O/NH3/CH4 with `pyscf-io run` at STO-3G, a linear
model, its predictions). Then, per command:

1. it runs once un-killed in a prepared directory: its duration T and its output (the reference);
2. ``--kills`` times, in a fresh copy of the same prepared directory, it is started in its own
   process group and the whole group gets SIGKILL at a uniformly random moment in (0, T)
   (seeded by ``--seed``); what it left must be intact:
   - commands that replace an existing output (``rho-data merge --overwrite``, ``pyscf-io merge``,
     ``rho-train predict --overwrite``, ``rho-train train`` into an existing run): the old output
     is still there, passes ``rho-data validate`` (HDF5) and equals the reference structure by
     structure (old and new are the same: every command here is deterministic);
   - commands that commit incrementally (``pyscf-io run``: state files + part files; gradient
     ``rho-train train``: checkpoints; ``rho-eval``: rows of metrics.csv): every committed item
     reads back and equals the reference, and no partial item is visible;
3. the same command is run again to completion (``--restart`` for gradient training when a
   checkpoint exists): it must exit 0 (a leftover temporary file must not block it) and its
   output must equal the reference (coefficients, weights and metrics to 1e-10 relative).

A kill is survived when both the state after the kill and the rerun pass. The table lists
per command the kills delivered, the kills survived, the runs that finished before their kill
moment (checked the same way, not counted as kills) and one line per failure. The exit status
is 1 when any kill was not survived.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
RTOL = 1e-10
#: Words of metadata and JSON keys that hold timings or host details, which differ between runs.
VOLATILE = ("time", "seconds", "elapsed", "host", "date", "version")

PYSCF_RUN = ["pyscf-io", "run", "molecules.xyz", "-o", "data.h5", "--workers", "2", "--basis", "sto-3g", "-q"]
TRAIN_SETTINGS = ["--set", "fit.alpha=1.0e-6", "--set", "descriptor.max_radial=4"]
GRADIENT_SETTINGS = [
    *TRAIN_SETTINGS,
    *("--set", "fit.method=gradient", "--set", "training.epochs=40", "--set", "training.checkpoint_every=1"),
]


# ---- processes ------------------------------------------------------------------------------------
def command(argv: list[str]) -> list[str]:
    """The console script of this environment for the first word, when there is one."""
    exe = BIN / argv[0]
    return [str(exe) if exe.exists() else argv[0], *argv[1:]]


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


def run(argv: list[str], cwd: Path, timeout: float = 1800) -> tuple[int, str, float]:
    """Run to completion; returns (exit status, output, seconds)."""
    t0 = time.perf_counter()
    try:
        result = subprocess.run(command(argv), cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:.0f} s", time.perf_counter() - t0
    return result.returncode, result.stdout + result.stderr, time.perf_counter() - t0


def run_and_kill(argv: list[str], cwd: Path, delay: float) -> bool:
    """Start ``argv`` in its own process group and SIGKILL the group after ``delay`` seconds.

    Returns False when the command finished before the kill moment."""
    with open(cwd / "killed-run.log", "w") as log:
        proc = subprocess.Popen(command(argv), cwd=cwd, env=ENV, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            finished = False
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # also any worker the leader spawned
        except ProcessLookupError:
            pass
        proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until every member of the group is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    return not finished


# ---- comparisons ----------------------------------------------------------------------------------
def close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(b)))) if b.size else 1.0
    return bool(np.all(np.abs(a - b) <= RTOL * scale))


def volatile(key: str) -> bool:
    key = key.lower()
    return key.endswith("_s") or any(word in key for word in VOLATILE)


def structure_fields(s) -> dict:
    """What is compared of one rho-data structure (timings left out)."""
    out = {"numbers": s.numbers, "positions": s.positions, "cell": s.cell, "dataset_index": s.dataset_index}
    for name in ("coefficients", "projections"):
        if getattr(s, name) is not None:
            out[name] = getattr(s, name)
    if s.overlap is not None:
        out["overlap"] = s.overlap.to_dense()
    out.update({f"metadata.{k}": v for k, v in s.metadata.items() if not volatile(k)})
    out.update({f"extras.{k}": v for k, v in s.extras.items()})
    return out


def compare_structure(s, ref, what: str) -> str | None:
    if s.label != ref.label:
        return f"{what}: label {s.label!r}, reference {ref.label!r}"
    got, want = structure_fields(s), structure_fields(ref)
    if set(got) != set(want):
        return f"{what}: fields {sorted(set(got) ^ set(want))} differ from the reference"
    for key, value in want.items():
        if not close(got[key], value):
            return f"{what}: {key} differs from the reference"
    return None


def validate(path: Path) -> str | None:
    """The checks of ``rho-data validate`` (its function, in this process: no start-up per check)."""
    from rho_data import RhoDataError
    from rho_data.validate import validate_file

    try:
        found = validate_file(path)
    except (RhoDataError, OSError) as err:
        return f"rho-data validate {path.name}: {last_line(str(err))}"
    return f"rho-data validate: {found[0].format(path.name)}" if found else None


def compare_rho_file(path: Path, reference: Path) -> str | None:
    """``path`` passes rho-data validate and holds the reference's structures."""
    from rho_data import RhoDataError, open_file

    if not path.exists():
        return f"{path.name} is missing"
    problem = validate(path)
    if problem:
        return problem
    try:
        with open_file(path) as got, open_file(reference) as want:
            if got.kind != want.kind or len(got) != len(want):
                return f"{path.name}: {len(got)} {got.kind} structures, reference {len(want)} {want.kind}"
            for i in range(len(want)):
                problem = compare_structure(got[i], want[i], f"{path.name} structure {i}")
                if problem:
                    return problem
    except (RhoDataError, OSError) as err:
        return f"{path.name}: unreadable ({last_line(str(err))})"
    return None


def compare_json(got, want, where: str) -> str | None:
    """Numbers to RTOL, same keys; strings (paths, ids) and timings are not compared."""
    if isinstance(want, dict):
        if not isinstance(got, dict) or set(got) != set(want):
            return f"{where}: keys differ"
        for key in want:
            if not volatile(key):
                problem = compare_json(got[key], want[key], f"{where}.{key}")
                if problem:
                    return problem
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            return f"{where}: lengths differ"
        for k, (g, w) in enumerate(zip(got, want)):
            problem = compare_json(g, w, f"{where}[{k}]")
            if problem:
                return problem
    elif isinstance(want, bool) or want is None:
        if got != want:
            return f"{where}: {got!r}, reference {want!r}"
    elif isinstance(want, (int, float)):
        if not isinstance(got, (int, float)) or not (got == want or close(got, want)):
            return f"{where}: {got!r}, reference {want!r}"
    return None


def load_torch(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def compare_weights(path: Path, reference: Path) -> str | None:
    """A model file or checkpoint that loads weights-only and holds the reference's weights."""
    if not path.exists():
        return f"{path.name} is missing"
    try:
        got = load_torch(path)["state_dict"]
    except Exception as err:  # noqa: BLE001 - a corrupt file fails in many ways
        return f"{path.name}: unreadable ({last_line(str(err)) or type(err).__name__})"
    want = load_torch(reference)["state_dict"]
    if set(got) != set(want):
        return f"{path.name}: other parameters than the reference"
    for key, value in want.items():
        if hasattr(value, "numpy") and not close(got[key].double().numpy(), value.double().numpy()):
            return f"{path.name}: {key} differs from the reference"
    return None


def read_metrics(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    return (rows[0] if rows else []), rows[1:]


def compare_rows(path: Path, reference: Path, *, complete: bool) -> str | None:
    """Every row of a metrics.csv equals the reference row of the same number; ``complete``: all rows."""
    header, rows = read_metrics(path)
    want_header, want_rows = read_metrics(reference)
    if not header:
        return None if not complete else f"{path.name} is empty"
    if header != want_header:
        return f"{path.name}: header differs from the reference (partial write?)"
    wanted = {row[0]: row for row in want_rows}
    seen = set()
    for k, row in enumerate(rows):
        if len(row) != len(header) or row[0] not in wanted:
            return f"{path.name} line {k + 2}: partial or unknown row"
        for name, value, ref in zip(header, row, wanted[row[0]]):
            try:
                same = value == ref or close(float(value), float(ref))
            except ValueError:
                same = False
            if not same:
                return f"{path.name} line {k + 2}: {name} = {value}, reference {ref}"
        if row[0] in seen:
            return f"{path.name}: row {row[0]} twice"
        seen.add(row[0])
    if complete and seen != set(wanted):
        return f"{path.name}: {len(seen)} rows, reference {len(wanted)}"
    return None


# ---- the commands -----------------------------------------------------------------------------------
@dataclass
class Scenario:
    """One command: how to prepare its directory, run it, and check it after a kill and a rerun."""

    name: str
    prepare: Callable[[Path, Path], None]  # (directory, fixture)
    argv: Callable[[Path], list[str]]  # the command, from its directory
    check_killed: Callable[[Path, Path], list[str]]  # (directory, reference directory)
    check_final: Callable[[Path, Path], list[str]]
    rerun: Callable[[Path], list[str]] | None = None  # default: argv


def copy(src: Path, dst: Path) -> None:
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True)
    else:
        shutil.copy2(src, dst)


def problems(*items: str | None) -> list[str]:
    return [p for p in items if p]


def supports(argv: list[str], flag: str) -> bool:
    """Whether a command's --help lists ``flag`` (so the benchmark works before and after a CLI gains it)."""
    result = subprocess.run(command([*argv, "--help"]), env={**ENV, "COLUMNS": "300"}, capture_output=True, text=True)
    return flag in result.stdout


def scenarios(overwrite_run: bool) -> list[Scenario]:
    """Every long-running command of the pipeline. ``overwrite_run``: rho-train train has --overwrite."""
    train_into_existing = ["--overwrite"] if overwrite_run else []

    # pyscf-io run: state files and part files are committed per structure.
    def pyscf_killed(d: Path, ref: Path) -> list[str]:
        from rho_data import RhoDataError, open_dataset

        out = []
        work = d / "data.h5.work"
        with open_dataset(ref / "data.h5") as want:
            by_input = {int(s.metadata["input_index"]): s for s in want}
            for state_file in sorted((work / "state").glob("*.json")) if (work / "state").exists() else []:
                try:
                    state = json.loads(state_file.read_text())
                except (OSError, json.JSONDecodeError):
                    out.append(f"state {state_file.name}: partial or unreadable")
                    continue
                if state.get("status") != "done":
                    out.append(f"state {state_file.name}: status {state.get('status')!r} ({state.get('reason', '')})"[:200])
                    continue
                i = int(state["index"])
                try:
                    with open_dataset(work / "parts" / state["part"]) as part:
                        out += problems(compare_structure(part[int(state["row"])], by_input[i], f"committed structure {i}"))
                except (RhoDataError, OSError, KeyError, IndexError) as err:
                    out.append(f"committed structure {i}: its part file row is unreadable ({last_line(str(err))})")
        if (d / "data.h5").exists():
            out += problems(compare_rho_file(d / "data.h5", ref / "data.h5"))
        return out

    # pyscf-io merge: rewrites the run's existing dataset.
    def merge_prepare(d: Path, fx: Path) -> None:
        copy(fx / "data.h5.work", d / "data.h5.work")
        copy(fx / "data.h5", d / "data.h5")

    # rho-data merge OUT IN... --overwrite over an existing OUT.
    def rho_merge_prepare(d: Path, fx: Path) -> None:
        for name in ("a.h5", "b.h5", "c.h5"):
            copy(fx / "data.h5", d / name)
        copy(fx / "merged.h5", d / "merged.h5")

    # rho-train train (exact fit) into an existing run folder.
    def train_prepare(d: Path, fx: Path) -> None:
        copy(fx / "data.h5", d / "data.h5")
        copy(fx / "run", d / "run")

    def train_final(d: Path, ref: Path) -> list[str]:
        out = problems(compare_weights(d / "run" / "model.pt", ref / "run" / "model.pt"))
        if not out and (d / "run" / "fit.json").exists():
            out += problems(
                compare_json(
                    json.loads((d / "run" / "fit.json").read_text()),
                    json.loads((ref / "run" / "fit.json").read_text()),
                    "fit.json",
                )
            )
        return out

    # rho-train train (gradient): checkpoints per epoch, --restart on rerun.
    def gradient_prepare(d: Path, fx: Path) -> None:
        copy(fx / "data.h5", d / "data.h5")

    def gradient_argv(d: Path) -> list[str]:
        return ["rho-train", "train", "data.h5", "-o", "grun", *GRADIENT_SETTINGS]

    def gradient_rerun(d: Path) -> list[str]:
        if any((d / "grun" / "checkpoints").glob("epoch_*.pt")):
            return [*gradient_argv(d), "--restart"]
        return [*gradient_argv(d), *(train_into_existing if (d / "grun").exists() else [])]

    def gradient_killed(d: Path, ref: Path) -> list[str]:
        out = []
        for ckpt in sorted((d / "grun" / "checkpoints").glob("*.pt")) if (d / "grun" / "checkpoints").exists() else []:
            out += problems(compare_weights(ckpt, ref / "grun" / "checkpoints" / ckpt.name))
        for name in ("model.pt", "last.pt"):
            if (d / "grun" / name).exists():
                try:
                    load_torch(d / "grun" / name)
                except Exception as err:  # noqa: BLE001
                    out.append(f"{name}: unreadable ({last_line(str(err))})")
        return out

    def gradient_final(d: Path, ref: Path) -> list[str]:
        return problems(*(compare_weights(d / "grun" / n, ref / "grun" / n) for n in ("model.pt", "last.pt")))

    # rho-train predict --overwrite over existing predictions.
    def predict_prepare(d: Path, fx: Path) -> None:
        for name in ("data.h5", "pred.h5"):
            copy(fx / name, d / name)
        copy(fx / "run" / "model.pt", d / "model.pt")

    # rho-eval: rows of metrics.csv as chunks finish, resumed by a rerun.
    def eval_prepare(d: Path, fx: Path) -> None:
        for name in ("data.h5", "pred.h5"):
            copy(fx / name, d / name)

    def eval_killed(d: Path, ref: Path) -> list[str]:
        out = []
        if (d / "report" / "metrics.csv").exists():
            out += problems(compare_rows(d / "report" / "metrics.csv", ref / "report" / "metrics.csv", complete=False))
        if (d / "report" / "summary.json").exists():
            out += eval_summary(d, ref)
        return out

    def eval_summary(d: Path, ref: Path) -> list[str]:
        try:
            got = json.loads((d / "report" / "summary.json").read_text())
        except (OSError, json.JSONDecodeError):
            return ["summary.json: partial or unreadable"]
        return problems(compare_json(got, json.loads((ref / "report" / "summary.json").read_text()), "summary.json"))

    def eval_final(d: Path, ref: Path) -> list[str]:
        return problems(compare_rows(d / "report" / "metrics.csv", ref / "report" / "metrics.csv", complete=True)) + eval_summary(
            d, ref
        )

    def rho(name: str, file: str) -> Callable[[Path, Path], list[str]]:
        return lambda d, ref: problems(compare_rho_file(d / file, ref / file))

    return [
        Scenario(
            "pyscf-io-run",
            lambda d, fx: copy(fx / "molecules.xyz", d / "molecules.xyz"),
            lambda d: PYSCF_RUN,
            pyscf_killed,
            rho("pyscf-io run", "data.h5"),
        ),
        Scenario(
            "pyscf-io-merge",
            merge_prepare,
            lambda d: ["pyscf-io", "merge", "data.h5.work", "-o", "data.h5"],
            rho("", "data.h5"),
            rho("", "data.h5"),
        ),
        Scenario(
            "rho-data-merge",
            rho_merge_prepare,
            lambda d: ["rho-data", "merge", "merged.h5", "a.h5", "b.h5", "c.h5", "--overwrite"],
            rho("", "merged.h5"),
            rho("", "merged.h5"),
        ),
        Scenario(
            "rho-train-train",
            train_prepare,
            lambda d: ["rho-train", "train", "data.h5", "-o", "run", *TRAIN_SETTINGS, *train_into_existing],
            train_final,
            train_final,
        ),
        Scenario("rho-train-train-restart", gradient_prepare, gradient_argv, gradient_killed, gradient_final, gradient_rerun),
        Scenario(
            "rho-train-predict",
            predict_prepare,
            lambda d: ["rho-train", "predict", "model.pt", "data.h5", "-o", "pred.h5", "--batch-size", "1", "--overwrite"],
            rho("", "pred.h5"),
            rho("", "pred.h5"),
        ),
        Scenario(
            "rho-eval",
            eval_prepare,
            lambda d: [
                "rho-eval",
                "pred.h5",
                "--reference",
                "data.h5",
                "-o",
                "report",
                "--no-plots",
                "--chunk-size",
                "1",
                "-j",
                "1",
            ],
            eval_killed,
            eval_final,
        ),
    ]


# ---- the benchmark ------------------------------------------------------------------------------------
@dataclass
class Outcome:
    command: str
    kills: int = 0
    survived: int = 0
    finished_first: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)


def must(argv: list[str], cwd: Path) -> float:
    code, out, seconds = run(argv, cwd)
    if code != 0:
        raise SystemExit(f"kill_survival: {' '.join(argv)} failed in {cwd}: {last_line(out)}")
    return seconds


def make_fixture(fx: Path) -> None:
    """9 perturbed small molecules at STO-3G, a linear model, its predictions, a merged dataset."""
    fx.mkdir(parents=True, exist_ok=True)
    must([sys.executable, str(ROOT / "examples" / "make_molecules.py"), "-o", "molecules.xyz", "--conformers", "3", "--molecules", "H2O", "NH3", "CH4"], fx)  # fmt: skip
    must(PYSCF_RUN, fx)
    must(["rho-data", "merge", "merged.h5", "data.h5", "data.h5", "data.h5"], fx)
    must(["rho-train", "train", "data.h5", "-o", "run", *TRAIN_SETTINGS], fx)
    must(["rho-train", "predict", "run/model.pt", "data.h5", "-o", "pred.h5"], fx)


def survive(scenario: Scenario, fixture: Path, base: Path, kills: int, rng: random.Random, echo=print) -> Outcome:
    """The reference run, then ``kills`` killed runs each followed by its checks and a rerun."""
    outcome = Outcome(scenario.name)
    ref = base / "reference"
    ref.mkdir(parents=True)
    scenario.prepare(ref, fixture)
    argv = scenario.argv(ref)
    code, out, duration = run(argv, ref)
    if code != 0:
        outcome.failures.append(f"reference run failed: {last_line(out)}")
        return outcome
    outcome.seconds = duration
    for k in range(kills):
        d = base / f"kill-{k:02d}"
        d.mkdir()
        scenario.prepare(d, fixture)
        delay = rng.uniform(0.0, duration)
        killed = run_and_kill(scenario.argv(d), d, delay)
        where = f"kill {k} at {delay:.2f} s"
        found = scenario.check_killed(d, ref)
        if not found:
            rerun = (scenario.rerun or scenario.argv)(d)
            code, out, _ = run(rerun, d, timeout=20 * duration + 300)
            if code != 0:
                found = [f"rerun exited {code}: {last_line(out)}"]
            else:
                found = scenario.check_final(d, ref)
                found = [f"after the rerun: {p}" for p in found]
        if killed:
            outcome.kills += 1
            outcome.survived += not found
        else:
            outcome.finished_first += 1
        if found:
            outcome.failures.append(f"{where}: {found[0]}" + (f" (+{len(found) - 1} more)" if len(found) > 1 else ""))
            echo(f"  {scenario.name} {where}: FAILED {found[0]}")
        else:
            shutil.rmtree(d)  # keep only what failed, to look at
    return outcome


def run_benchmark(workdir: Path, kills: int, seed: int, commands: list[str] | None = None, echo=print) -> list[Outcome]:
    """Every selected command's survival; ``workdir`` keeps the fixture and the failed runs."""
    overwrite_run = supports(["rho-train", "train"], "--overwrite")
    selected = [s for s in scenarios(overwrite_run) if not commands or s.name in commands]
    unknown = set(commands or []) - {s.name for s in scenarios(overwrite_run)}
    if unknown:
        raise SystemExit(f"kill_survival: unknown commands {sorted(unknown)}; known: {[s.name for s in scenarios(False)]}")
    rng = random.Random(seed)
    fixture = workdir / "fixture"
    echo(f"fixture in {fixture} ...")
    make_fixture(fixture)
    outcomes = []
    for scenario in selected:
        echo(f"{scenario.name}: {kills} kills ...")
        outcomes.append(survive(scenario, fixture, workdir / scenario.name, kills, rng, echo))
    return outcomes


def table(outcomes: list[Outcome]) -> str:
    lines = [
        "| command | un-killed run (s) | kills | survived | finished before the kill | failures |",
        "|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        failures = "; ".join(o.failures) if o.failures else "-"
        lines.append(f"| {o.command} | {o.seconds:.1f} | {o.kills} | {o.survived} | {o.finished_first} | {failures} |")
    total, survived = sum(o.kills for o in outcomes), sum(o.survived for o in outcomes)
    lines.append(f"\n{survived} of {total} kills survived")
    return "\n".join(lines)


def all_survived(outcomes: list[Outcome]) -> bool:
    return all(not o.failures for o in outcomes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=20, help="kills per command (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--commands", nargs="+", help="a subset: " + " ".join(s.name for s in scenarios(False)))
    parser.add_argument(
        "--workdir", type=Path, help="where the fixture and failed runs are kept (default: a new temporary folder)"
    )
    args = parser.parse_args(argv)
    if args.kills < 0:
        parser.error("--kills must be >= 0")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="kill-survival-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if any(workdir.iterdir()):
        parser.error(f"--workdir {workdir} is not empty")
    t0 = time.perf_counter()
    outcomes = run_benchmark(workdir.resolve(), args.kills, args.seed, args.commands)
    print(table(outcomes))
    print(f"(seed {args.seed}, {time.perf_counter() - t0:.0f} s; failed runs kept under {workdir})")
    return 0 if all_survived(outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
