"""`edge-ae export`: loaded lazily by the runtime CLI (needs torch and onnx)."""

from __future__ import annotations

from pathlib import Path

import click

from edge_runtime.cli.options import overwrite_option
from edge_runtime.errors import EdgeAEError
from edge_runtime.outputs import check_file_output
from export.onnx_export import export_checkpoint
from train.errors import TrainError


@click.command("export")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="ONNX file to write.")
@click.option("--atol", type=float, default=1e-4, show_default=True,
              help="Largest torch-vs-onnxruntime difference accepted.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int8"]), default="fp32", show_default=True,
              help="fp16 (for CUDA) or int8 (static QDQ; for CPUs) variants are checked against fp32 before writing.")
@click.option("--calibration", type=click.Path(exists=True),
              help="Image folder, image or video to calibrate int8 on (default: the model's validation images).")
@click.option("--max-drop", type=click.FloatRange(min=0), default=None,
              help="Quality a variant may lose against fp32: dB PSNR for denoisers [default 0.1].")
@click.option("--frame-io", is_flag=True,
              help="Take and return uint8 HxWx3 BGR frames; conversion runs inside the model (on the GPU with CUDA).")
@overwrite_option
def export_command(checkpoint: str, output: str, atol: float, precision: str = "fp32", calibration: str | None = None,
                   max_drop: float | None = None, frame_io: bool = False, overwrite: bool = False) -> None:
    """Export a checkpoint to one self-describing ONNX file (dynamic size, card inside).

    The export is checked with onnx.checker and against torch on onnxruntime; if either
    check fails, nothing is written. An existing output is refused unless -y.
    """
    try:
        check_file_output(Path(output), (".onnx",), "an ONNX model", [checkpoint, calibration], overwrite)
    except EdgeAEError as e:
        raise click.ClickException(str(e)) from None
    if precision != "fp32" or frame_io or checkpoint.endswith(".onnx"):
        _export_variant(checkpoint, output, atol, precision, calibration, max_drop, frame_io, overwrite)
        return
    try:
        card = export_checkpoint(checkpoint, output, atol=atol, overwrite=overwrite)
    except (TrainError, EdgeAEError) as e:  # EdgeAEError: reading and writing cards and files
        raise click.ClickException(str(e)) from None
    diff = card.metrics.get("export_parity_max_abs", float("nan"))
    click.echo(f"wrote {output}: {card.family}, task {card.task}, {card.precision}, parity max |diff| {diff:.1e}")


def _export_variant(checkpoint: str, output: str, atol: float, precision: str, calibration: str | None,
                    max_drop: float | None, frame_io: bool, overwrite: bool) -> None:
    """Export fp32 to a temporary file (or start from an fp32 .onnx), then write the gated variant."""
    import tempfile

    from export.precision import make_variant

    out = Path(output)
    tmp_dir = tempfile.TemporaryDirectory(prefix="edge-ae-export-")
    try:
        source = Path(checkpoint)
        if not checkpoint.endswith(".onnx"):
            source = Path(tmp_dir.name) / "fp32.onnx"
            export_checkpoint(checkpoint, source, atol=atol)
        card = make_variant(source, out, precision, calibration, max_drop, frame_io,
                            log=lambda s: click.echo(s, err=True), overwrite=overwrite)
    except (TrainError, EdgeAEError) as e:  # EdgeAEError: reading and writing cards and files
        raise click.ClickException(str(e)) from None
    finally:
        tmp_dir.cleanup()
    gate = card.metrics["precision_gate"]
    unit = "dB PSNR" if gate["metric"] == "psnr_db" else "rank-correlation"
    click.echo(f"wrote {output}: {card.family}, task {card.task}, {card.precision}"
               f"{', uint8 frame input' if frame_io else ''}; loses {card.metrics['precision_drop']:.3f} {unit} "
               f"against fp32 on {gate['frames']} held-back frames (allowed {gate['max_drop']:g})")
