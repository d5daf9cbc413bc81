"""`edge-ae export`: loaded lazily by the runtime CLI (needs torch and onnx)."""

from __future__ import annotations

from pathlib import Path

import click

from edge_runtime.errors import ModelCardError
from export.onnx_export import ExportError, export_checkpoint
from train.checkpoint import CheckpointError


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="ONNX file to write.")
@click.option("--atol", type=float, default=1e-4, show_default=True,
              help="Largest torch-vs-onnxruntime difference accepted.")
def export_command(checkpoint: str, output: str, atol: float) -> None:
    """Export a checkpoint to one self-describing ONNX file (dynamic size, card inside).

    The export is checked with onnx.checker and against torch on onnxruntime; if either
    check fails, nothing is written.
    """
    if Path(output).resolve() == Path(checkpoint).resolve():
        raise click.ClickException(f"{output}: the output would overwrite the checkpoint")
    try:
        card = export_checkpoint(checkpoint, output, atol=atol)
    except (CheckpointError, ExportError, ModelCardError) as e:
        raise click.ClickException(str(e)) from None
    diff = card.metrics.get("export_parity_max_abs", float("nan"))
    click.echo(f"wrote {output}: {card.family}, task {card.task}, {card.precision}, parity max |diff| {diff:.1e}")
