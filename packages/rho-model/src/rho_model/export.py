"""Self-contained model files: weights + config (loader needs only rho-model), plus TorchScript of the network."""

from __future__ import annotations

from pathlib import Path

import torch

from rho_data.atomic import atomic_output, check_output_location

from .model_file import load_model, save_model


def export_model(
    model_path: str | Path,
    output: str | Path,
    *,
    torchscript: bool = True,
    overwrite: bool = False,
    net_file: str | Path | None = None,
) -> dict[str, str]:
    """Copy a trained model to ``output`` (weights-only format) and, where the modules allow it,
    write ``output`` with suffix ``.ts`` holding the TorchScript network (features -> coefficients).

    Both go through temporary files; an existing output is replaced only with ``overwrite``.
    """
    output = Path(output)
    ts = output.with_suffix(".ts")
    check_output_location(output, overwrite=overwrite, what="exported model")
    if torchscript:
        check_output_location(ts, overwrite=overwrite, what="TorchScript file")
    model = load_model(model_path, net_file=net_file)
    save_model(model, output, overwrite=overwrite)
    written = {"model": str(output)}
    if torchscript:
        try:
            scripted = torch.jit.script(model)
        except Exception as err:  # noqa: BLE001 - user networks may not be scriptable
            written["torchscript"] = f"not written: {type(err).__name__}: {str(err).splitlines()[0]}"
        else:
            with atomic_output(ts, overwrite=overwrite, what="TorchScript file") as tmp:
                scripted.save(str(tmp))
            written["torchscript"] = str(ts)
    return written
