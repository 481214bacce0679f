"""The ``rho-train`` command line.

Every command is registered on a :class:`rho_data.cli_support.RhoTyper`: bad input
(:class:`RhoModelError`, any :class:`~rho_data.RhoDataError`) and system errors become one line
on standard error and exit code 1, so no command can forget the error path.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress

from rho_data.cli_support import (
    config_option,
    make_cli,
    output_option,
    overwrite_option,
    progress_bar,
    set_option,
)

from . import __version__
from .errors import RhoModelError
from .options import DEFAULTS, load_options

app, console, err_console = make_cli(
    help="Train lambda-SOAP models of density-fitting coefficients in the overlap metric.",
    version=f"rho-model {__version__}",
    errors=(RhoModelError,),
)

NET_HELP = "net.py of a model.type python network (the code stored in a model file is never run; see show-net)"
#: the old spellings of renamed options, accepted and hidden from the help
OLD_SPELLINGS = {"--out": "--output", "--options": "--config"}


def _progress() -> Progress:
    return progress_bar(console, eta=False)


@app.command()
def options() -> None:
    """Print the default ML options (YAML, with a comment per option)."""
    from rho_data.settings import commented_yaml

    from .option_help import OPTION_HELP

    header = "rho-train options (defaults). Override with -c FILE (repeatable: a later file wins) and --set key=value."
    typer.echo(commented_yaml(DEFAULTS, OPTION_HELP, header=header), nl=False)


TARGET = typer.Option(
    None, "--target", help="the field to learn, one of the dataset's targets (rho-data info), e.g. homo (= --set data.target=...)"
)


@app.command(aliases=OLD_SPELLINGS)
def train(
    dataset: Path = typer.Argument(..., help="rho-data dataset"),
    out: Path = output_option("run folder", Path("run")),
    config: list[Path] | None = config_option("rho-train"),
    overrides: list[str] | None = set_option(),
    restart: bool = typer.Option(False, "--restart", help="continue from the last checkpoint in the run folder"),
    overwrite: bool = overwrite_option("replace the run already in the run folder"),
    init: Path | None = typer.Option(None, "--init", help="fine-tune from this saved model"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
    device: str | None = typer.Option(None, "--device", help="cpu or cuda"),
    target: str | None = TARGET,
) -> None:
    """Fit a model (exact overlap-metric fit for linear models, gradient training otherwise)."""
    from .train import run_training

    overrides = [*(overrides or []), *([f"data.target={target}"] if target else [])]
    opts = load_options(config or [], _named(device, net if init is None and not restart else None), overrides)
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
        )
    console.print(f"run written to {out} ({summary['splits']})")


@app.command(aliases=OLD_SPELLINGS)
def submit(
    dataset: Path = typer.Argument(..., help="rho-data dataset"),
    out: Path = output_option("run folder (the job script and SLURM log go here too)", Path("run")),
    config: list[Path] | None = config_option("rho-train"),
    overrides: list[str] | None = set_option(),
    restart: bool = typer.Option(False, "--restart"),
    overwrite: bool = overwrite_option("passed on to train"),
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
    target: str | None = TARGET,
) -> None:
    """Write OUT/train.sbatch running `srun torchrun ... -m rho_model.cli train ...` and submit it."""
    from .slurm import JobSpec, write_job
    from .slurm import submit as sbatch

    overrides = [*(overrides or []), *([f"data.target={target}"] if target else [])]
    load_options(config or [], _named(device, net if init is None and not restart else None), overrides)  # fail here
    spec = JobSpec(
        dataset,
        out,
        list(config or []),
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


def _named(device: str | None, net: Path | None = None) -> dict:
    """The options that named flags set (after the -c files and --set)."""
    named: dict = {}
    if device is not None:
        named["device"] = device
    if net is not None:
        named["model"] = {"net_file": str(net)}
    return named


@app.command()
def predict(
    model: Path = typer.Argument(..., help="model file (model.pt of a run, or an exported model)"),
    input: Path = typer.Argument(..., help="rho-data dataset or any geometry file ASE reads"),
    output: Path = output_option("predictions file", Path("predictions.h5")),
    indices: Path | None = typer.Option(None, "--indices", help="split file (one index per line) to predict only those"),
    batch_size: int = typer.Option(100, "--batch-size", help="structures read and written together"),
    max_atoms: int = typer.Option(500, "--max-atoms", help="atoms per descriptor call (bounds memory)"),
    device: str = typer.Option("cpu", "--device"),
    overwrite: bool = overwrite_option("replace OUTPUT (only once the new file is complete)"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
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
        )
    console.print(f"{n} structures predicted into {output}")


@app.command()
def export(
    model: Path = typer.Argument(..., help="trained model file"),
    output: Path = output_option("exported model file", Path("exported.pt")),
    overwrite: bool = overwrite_option("replace OUTPUT (and its .ts)"),
    net: Path | None = typer.Option(None, "--net", help=NET_HELP),
) -> None:
    """Write a self-contained model file (weights + config; TorchScript of the network where possible)."""
    from .export import export_model

    written = export_model(model, output, overwrite=overwrite, net_file=net)
    for k, v in written.items():
        console.print(f"{k}: {v}")


@app.command()
def upgrade(
    model: Path = typer.Argument(..., help="model file or checkpoint of an older format version"),
    output: Path | None = output_option("write the upgraded file here instead of in place", None),
    overwrite: bool = overwrite_option("replace OUTPUT if it exists"),
) -> None:
    """Upgrade a model file or checkpoint to the current format version, one step at a time."""
    from .model_upgrade import upgrade_model_file

    steps = upgrade_model_file(model, output, overwrite=overwrite)
    if len(steps) == 1:
        console.print(f"{model}: already at model file version {steps[0]}")
    else:
        console.print(f"{output or model}: upgraded " + " -> ".join(str(v) for v in steps))


@app.command("show-net")
def show_net(
    model: Path = typer.Argument(..., help="model file of a model.type python network"),
    output: Path | None = output_option("write the stored net.py here (default: print it)", None),
    overwrite: bool = overwrite_option("replace OUTPUT if it exists"),
) -> None:
    """Write out the net.py stored in a model file, for review (it is never run; pass it back with --net)."""
    from rho_data.atomic import write_text_atomic

    from .model_file import model_config_of, read_payload
    from .netcode import stored_net_source

    source = stored_net_source(model_config_of(read_payload(model), model), model)
    if output is None:
        typer.echo(source, nl=not source.endswith("\n"))
        return
    write_text_atomic(output, source, what="network file", overwrite=overwrite)
    console.print(f"network code of {model} written to {output}; review it, then pass it with --net {output}")


if __name__ == "__main__":
    app()
