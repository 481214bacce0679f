"""Self-contained model files: weights + config (loader needs only rho-model), plus TorchScript of the network."""

from __future__ import annotations

from pathlib import Path

import torch

from .model import load_model, save_model


def export_model(model_path: str | Path, output: str | Path, *, torchscript: bool = True) -> dict[str, str]:
    """Copy a trained model to ``output`` (weights-only format) and, where the modules allow it,
    write ``output`` with suffix ``.ts`` holding the TorchScript network (features -> coefficients)."""
    model = load_model(model_path)
    output = Path(output)
    save_model(model, output)
    written = {"model": str(output)}
    if torchscript:
        try:
            scripted = torch.jit.script(model)
        except Exception as err:  # noqa: BLE001 - user networks may not be scriptable
            written["torchscript"] = f"not written: {type(err).__name__}: {str(err).splitlines()[0]}"
        else:
            ts = output.with_suffix(".ts")
            scripted.save(str(ts))
            written["torchscript"] = str(ts)
    return written
