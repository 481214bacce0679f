"""The ``rho-train`` command line.

Every command is registered on a :class:`rho_data.cli_support.RhoTyper`: bad input
(:class:`RhoModelError`, any :class:`~rho_data.RhoDataError`) and system errors become one line
on standard error and exit code 1, so no command can forget the error path.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from rho_data.cli_support import RhoTyper, progress_bar, version_callback

from . import __version__
from .errors import RhoModelError
from .options import DEFAULTS, dump_options, load_options, parse_override

console = Console()
err_console = Console(stderr=True)
app = RhoTyper(
    help="Train lambda-SOAP models of density-fitting coefficients in the overlap metric.",
    add_completion=False,
    errors=(RhoModelError,),
    error_console=err_console,
)
_show_version = version_callback(f"rho-model {__version__}", console)

NET_HELP = "net.py of a model.type python network (code stored in a model file never runs without this or --trust-model-code)"
TRUST_HELP = "run the network code stored in the model file (printed to stderr first)"


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_show_version, is_eager=True, help="Print the version."),
) -> None:
    """rho-train."""


def _progress() -> Progress:
    return progress_bar(console, eta=False)


@app.command()
def options() -> None:
    """Print the default ML options (YAML)."""
    typer.echo(dump_options(DEFAULTS))


@app.command()
def train(
    dataset: Path = typer.Argument(..., help="rho-data dataset"),
    out: Path = typer.Option(Path("run"), "-o", "--out", help="run folder"),
    options_file: Path | None = typer.Option(None, "--options", help="ML options YAML"),
    overrides: list[str] = typer.Option([], "--set", help="section.key=value (YAML value), repeatable"),
    restart: bool = typer.Option(False, "--restart", help="continue from the last checkpoint in the run folder"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run already in the run folder"),
    init: Path | None = typer.Option(None, "--init", help="fine-tune from this saved model"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
    trust_model_code: bool = typer.Option(False, "--trust-model-code", help=TRUST_HELP),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda"),
) -> None:
    """Fit a model (exact overlap-metric fit for linear models, gradient training otherwise)."""
    from .train import run_training

    opts = load_options(options_file, _merged(overrides, device, net if init is None and not restart else None))
    with _progress() as progress:
        summary = run_training(
            opts,
            dataset,
            out,
            restart=restart,
            init_model=init,
            echo=lambda line: progress.console.print(line, highlight=False, markup=False),
            progress=progress,
            overwrite=overwrite,
            net_file=net,
            trust_model_code=trust_model_code,
        )
    console.print(f"run written to {out} ({summary['splits']})")


def _deep_update(base: dict, update: dict) -> None:
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = v


@app.command()
def submit(
    dataset: Path = typer.Argument(..., help="rho-data dataset"),
    out: Path = typer.Option(Path("run"), "-o", "--out", help="run folder (the job script and SLURM log go here too)"),
    options_file: Path | None = typer.Option(None, "--options", help="ML options YAML"),
    overrides: list[str] = typer.Option([], "--set", help="section.key=value, passed on to train"),
    restart: bool = typer.Option(False, "--restart"),
    overwrite: bool = typer.Option(False, "--overwrite", help="passed on to train"),
    init: Path | None = typer.Option(None, "--init"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
    device: str | None = typer.Option(None, "--device"),
    nodes: int = typer.Option(1, "--nodes"),
    procs_per_node: int = typer.Option(1, "--procs-per-node", help="training processes per node (torchrun --nproc_per_node)"),
    cpus_per_proc: int = typer.Option(1, "--cpus-per-proc"),
    time: str = typer.Option("01:00:00", "--time"),
    partition: str | None = typer.Option(None, "--partition"),
    gpus_per_node: int = typer.Option(0, "--gpus-per-node"),
    port: int = typer.Option(29500, "--port", help="rendezvous port on the first node"),
    sbatch_arg: list[str] = typer.Option([], "--sbatch-arg", help="extra #SBATCH line, e.g. --account=abc (repeatable)"),
    script_only: bool = typer.Option(False, "--script-only", help="write the script, do not submit"),
    wait: bool = typer.Option(False, "--wait", help="block until the job ends (sbatch --wait)"),
) -> None:
    """Write OUT/train.sbatch running `srun torchrun ... -m rho_model.cli train ...` and submit it."""
    from .slurm import JobSpec, write_job
    from .slurm import submit as sbatch

    load_options(options_file, _merged(overrides, device, net if init is None and not restart else None))  # fail here
    spec = JobSpec(
        dataset,
        out,
        options_file,
        list(overrides),
        restart,
        init,
        device,
        nodes,
        procs_per_node,
        cpus_per_proc,
        time,
        partition,
        gpus_per_node,
        port=port,
        sbatch_args=list(sbatch_arg),
        overwrite=overwrite,
        net=net,
    )
    script = write_job(spec)
    console.print(f"job script: {script}")
    if not script_only:
        job = sbatch(script, wait=wait)
        console.print(f"job {job} {'finished' if wait else 'submitted'}; log: {out / f'slurm-{job}.out'}")


def _merged(overrides: list[str], device: str | None, net: Path | None = None) -> dict:
    merged: dict = {}
    for text in overrides:
        _deep_update(merged, parse_override(text))
    if device is not None:
        merged["device"] = device
    if net is not None:
        _deep_update(merged, {"model": {"net_file": str(net)}})
    return merged


@app.command()
def predict(
    model: Path = typer.Argument(..., help="model file (model.pt of a run, or an exported model)"),
    input: Path = typer.Argument(..., help="rho-data dataset or any geometry file ASE reads"),
    output: Path = typer.Option(Path("predictions.h5"), "-o", "--output"),
    indices: Path | None = typer.Option(None, "--indices", help="split file (one index per line) to predict only those"),
    batch_size: int = typer.Option(100, "--batch-size", help="structures read and written together"),
    max_atoms: int = typer.Option(500, "--max-atoms", help="atoms per descriptor call (bounds memory)"),
    device: str = typer.Option("cpu", "--device"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace OUTPUT (only once the new file is complete)"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
    trust_model_code: bool = typer.Option(False, "--trust-model-code", help=TRUST_HELP),
) -> None:
    """Predict coefficients into a rho-data predictions file (canonical order)."""
    from .predict import predict_file
    from .splits import read_index_file

    idx = None
    if indices is not None:
        import h5py

        if not input.is_file() or not h5py.is_hdf5(input):
            raise RhoModelError(f"{indices}: --indices needs a rho-data dataset as input")
        from rho_data import open_dataset

        with open_dataset(input) as ds:
            idx = read_index_file(indices, dataset_id=ds.dataset_id, n_structures=len(ds))
    with _progress() as progress:
        task = progress.add_task("predict", total=len(idx) if idx is not None else None)
        n = predict_file(
            model,
            input,
            output,
            indices=idx,
            batch_size=batch_size,
            device=device,
            overwrite=overwrite,
            max_atoms=max_atoms,
            on_batch=lambda done: progress.update(task, completed=done),
            net_file=net,
            trust_model_code=trust_model_code,
        )
    console.print(f"{n} structures predicted into {output}")


@app.command()
def export(
    model: Path = typer.Argument(..., help="trained model file"),
    output: Path = typer.Option(Path("exported.pt"), "-o", "--output"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace OUTPUT (and its .ts)"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
    trust_model_code: bool = typer.Option(False, "--trust-model-code", help=TRUST_HELP),
) -> None:
    """Write a self-contained model file (weights + config; TorchScript of the network where possible)."""
    from .export import export_model

    written = export_model(model, output, overwrite=overwrite, net_file=net, trust_model_code=trust_model_code)
    for k, v in written.items():
        console.print(f"{k}: {v}")


if __name__ == "__main__":
    app()
