"""`edge-ae detect` (flag anomalous frames of a video, folder, stream or camera) and `edge-ae calibrate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edge_runtime.cli.options import (
    BatchProgress,
    FiniteFloatRange,
    Progress,
    batch_options,
    camera_option,
    device_option,
    fail_on_problems,
    max_frames_option,
    model_option,
    overwrite_option,
    reconnect_option,
    signal_exit_code,
    threads_option,
    user_errors,
)
from edge_runtime.events import HOLD, RELEASE

if TYPE_CHECKING:
    from edge_runtime.anomaly import AnomalyDetector
    from edge_runtime.archive import ItemResult
    from edge_runtime.detect import DetectReport


@click.command()
@click.argument("inputs", nargs=-1, metavar="[INPUT]...")
@camera_option()
@model_option("Anomaly model: trained with 'edge-ae train --task anomaly', calibrated with 'edge-ae calibrate'.")
@click.option("--scores", "scores_path", type=click.Path(dir_okay=False),
              help="CSV with one row per frame: frame, time, name, score, raw_score, flag.")
@click.option("--events", "events_path", type=click.Path(dir_okay=False),
              help="JSON lines, one per event: start/end frame and time, peak score and frame.")
@click.option("-o", "--output", type=click.Path(),
              help="Annotated video: heat map and score bar. For a batch: the folder for each video's "
                   "NAME.scores.csv and NAME.events.jsonl.")
@click.option("--snapshots", type=click.Path(file_okay=False), help="Folder for the peak frame of each event.")
@click.option("--plot", type=click.Path(dir_okay=False), help="PNG of the score timeline.")
@click.option("--threshold", type=FiniteFloatRange(min=0, min_open=True),
              help="Use this threshold (a positive number) instead of the calibrated one.")
@click.option("--release", type=FiniteFloatRange(min=0, max=1), default=RELEASE, show_default=True,
              help="An event closes once the score stays below the release level, this share of the way from "
                   "the median normal score (from calibration; 0 without one) up to the threshold ...")
@click.option("--hold", type=click.IntRange(min=1), default=HOLD, show_default=True,
              help="... for this many frames in a row.")
@max_frames_option("Stop after this many frames (per video in a batch).")
@reconnect_option
@overwrite_option
@click.option("--skip-existing", is_flag=True,
              help="In a batch: leave videos whose scores and events already exist as they are and do the rest.")
@batch_options
@threads_option
@device_option
@user_errors
def detect(inputs: tuple[str, ...], camera: int | None, model: str | None, scores_path: str | None,
           events_path: str | None, output: str | None, snapshots: str | None, plot: str | None,
           threshold: float | None, release: float, hold: int, max_frames: int | None, reconnect: bool,
           overwrite: bool, skip_existing: bool, manifest: str | None, shard: str | None, threads: int | None,
           device: str) -> None:
    """Flag anomalous frames of a video, a folder of images, a stream URL or a camera.

    Each frame gets a score (causal: it never uses later frames); frames scoring above the
    model's calibrated threshold are flagged, and runs of them become events (an event closes
    once the score stays below the release level for --hold frames: --release of the way from
    the median normal score to the threshold).

    Several videos, or a folder of videos (searched recursively), are a batch: each video's
    scores and events go to -o FOLDER, mirroring the inputs (NAME.scores.csv, NAME.events.jsonl),
    each written only once the video is done; one failure does not stop the rest.

    \b
    Examples:
      edge-ae detect hall.mp4 -m hall.onnx --scores scores.csv --events events.jsonl -o annotated.mp4
      edge-ae detect --camera 0 -m hall.onnx --events events.jsonl --snapshots events/
      edge-ae detect parts/ -m parts.onnx --scores scores.csv --plot timeline.png
      edge-ae detect archive/ -m hall.onnx -o results/ --skip-existing --manifest done.jsonl --shard 2/8
    """
    from edge_runtime.batch import is_video_folder
    from edge_runtime.detect import detect_stream
    from edge_runtime.errors import OutputError
    from edge_runtime.events import release_level
    from edge_runtime.outputs import VIDEO_OUT_SUFFIXES, check_outputs
    from edge_runtime.sources import open_source

    if bool(inputs) == (camera is not None):
        raise click.UsageError("give exactly one of INPUT (or several videos) or --camera N")
    if overwrite and skip_existing:
        raise click.UsageError("give -y (replace existing outputs) or --skip-existing (keep them), not both")
    if len(inputs) > 1 or (inputs and is_video_folder(Path(inputs[0]))):
        if any((scores_path, events_path, snapshots, plot)):
            raise click.UsageError("--scores, --events, --snapshots and --plot are for one input; a batch writes "
                                   "each video's scores and events into the -o folder")
        if output is None:
            raise click.UsageError("a batch of videos needs -o FOLDER for each video's scores and events")
        if model is None:
            raise click.UsageError("give --model: a calibrated anomaly model")
        _detect_batch(inputs, output, model, threshold, release, hold, max_frames, overwrite, skip_existing,
                      manifest, shard, threads, device)
        return
    input = inputs[0] if inputs else None
    if skip_existing or manifest or shard:
        raise click.UsageError("--skip-existing, --manifest and --shard are for a batch: a folder of videos or several "
                               "videos")
    if not any((scores_path, events_path, output, snapshots, plot)):
        raise click.UsageError("nothing to write: give at least one of --scores, --events, -o, --snapshots, --plot")
    if model is None:
        raise click.UsageError("give --model: an anomaly model trained on normal footage ('edge-ae train --task "
                               "anomaly', 'edge-ae export') and calibrated ('edge-ae calibrate MODEL NORMAL_DATA')")
    paths = {k: Path(v) if v else None for k, v in
             dict(scores=scores_path, events=events_path, video=output, plot=plot).items()}
    if paths["video"] is not None and paths["video"].suffix.lower() not in VIDEO_OUT_SUFFIXES:
        raise click.UsageError(f"{output}: -o writes a video (.mp4, .avi, .mkv, .mov)")
    if paths["plot"] is not None and paths["plot"].suffix.lower() != ".png":
        raise click.UsageError(f"{plot}: --plot writes a .png image")
    check_outputs(list(paths.values()), [input, model],
                  "{output}: this output is an input; choose another name so the input is kept", overwrite)
    if snapshots and not overwrite and Path(snapshots).is_dir() and any(Path(snapshots).glob("event_*.png")):
        msg = f"{snapshots}: already holds event snapshots; use -y (--overwrite) to replace them"
        raise OutputError(msg)
    det = _detector(model, threshold, device, threads)
    assert det.threshold is not None  # _detector refuses a model without one
    source = open_source(camera if camera is not None else str(input), reconnect=reconnect,
                         on_event=lambda m: click.echo(m, err=True))
    click.echo(f"{_describe(det)}; input {source.description}", err=True)

    def line(rep: DetectReport) -> str:
        return f"{rep.frames} frames {rep.fps:.1f} fps, {rep.flagged} flagged, {len(rep.events)} events closed"

    progress: Progress[DetectReport] = Progress(source, line=line, every=(0.5, 10.0))
    try:
        rep = detect_stream(det, source, paths["scores"], paths["events"], paths["video"],
                            Path(snapshots) if snapshots else None, paths["plot"],
                            release_level(det.threshold, det.stats, release), hold, max_frames, progress.update,
                            overwrite=overwrite)
    finally:
        source.close()
    progress.done()
    state = f"stopped by {rep.signal} after" if rep.interrupted else "done:"
    click.echo(f"{state} {rep.frames} frames in {rep.seconds:.1f} s ({rep.fps:.1f} fps, model "
               f"{rep.model_ms:.1f} ms/frame); {rep.flagged} flagged, "
               f"{len(rep.events)} event(s); wrote {', '.join(rep.outputs)}", err=True)
    if rep.interrupted:
        sys.exit(signal_exit_code(rep.signal))
    fail_on_problems(rep.problems)


def _detector(model: str, threshold: float | None, device: str, threads: int | None) -> AnomalyDetector:
    """The model with its calibrated threshold (or ``threshold``); a model with neither is refused."""
    from edge_runtime.anomaly import AnomalyDetector
    from edge_runtime.errors import NotCalibratedError

    det = AnomalyDetector(model, device=device, threads=threads)
    if threshold is not None:
        det.threshold = threshold
    if det.threshold is None:
        msg = (f"{model}: this model has no anomaly threshold yet; calibrate it on normal footage of the scene "
               f"first: edge-ae calibrate {model} NORMAL_DATA (or give --threshold)")
        raise NotCalibratedError(msg)
    return det


def _describe(det: AnomalyDetector) -> str:
    return (f"model {det.model.path.name} ({det.model.card.family}, {det.model.card.precision}, score "
            f"{det.score_name}, threshold {det.threshold:.4g}) on {det.model.provider}")


def _detect_batch(inputs: tuple[str, ...], output: str, model: str, threshold: float | None, release: float,
                  hold: int, max_frames: int | None, overwrite: bool, skip_existing: bool, manifest_path: str | None,
                  shard_spec: str | None, threads: int | None, device: str) -> None:
    """Score many videos into one folder, each into its own score log and event log; report each, then a
    summary; exit 1 if any failed."""
    from edge_runtime.archive import (
        Manifest,
        detect_item,
        detect_outputs,
        parse_shard,
        pin_threads,
        run_items,
        shard,
        skipped,
        summarise_items,
    )
    from edge_runtime.batch import plan_batch
    from edge_runtime.errors import OutputError
    from edge_runtime.events import release_level

    items = plan_batch(inputs, output)
    bases: dict[Path, Path] = {}
    for item in items:
        scores = detect_outputs(item.output)[0]
        if scores in bases:
            msg = f"{item.source} and {bases[scores]} would both be written to {scores}; score them in separate runs"
            raise OutputError(msg)
        bases[scores] = item.source
    if shard_spec is not None:
        try:
            k, n = parse_shard(shard_spec)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--shard") from None
        items = shard(items, k, n)
        click.echo(f"shard {k}/{n}: {len(items)} videos", err=True)
    done = [i for i in items if all(p.exists() for p in detect_outputs(i.output))]
    there = [i for i in items if any(p.exists() for p in detect_outputs(i.output))]
    if skip_existing:
        there = [i for i in there if i not in done]  # half there (one log of two): redone, replacing it
    if there and not overwrite:
        shown = ", ".join(str(detect_outputs(i.output)[0]) for i in there[:3]) + (", ..." if len(there) > 3 else "")
        more = "; use --skip-existing to do only the rest, or -y to redo them" if not skip_existing else \
            " without their event logs; use -y to redo them"
        raise click.ClickException(f"{output}: {len(there)} of the {len(items)} outputs already exist ({shown}){more}")
    det = _detector(model, threshold, device, threads)
    assert det.threshold is not None  # _detector refuses a model without one
    low = release_level(det.threshold, det.stats, release)
    manifest = Manifest(manifest_path) if manifest_path else None
    results: list[ItemResult] = []
    try:
        if skip_existing and done:
            items = [i for i in items if i not in done]
            click.echo(f"{len(done)} videos already done in {output}, skipped (--skip-existing)", err=True)
            for item in done:
                if manifest is not None:
                    manifest.write(skipped(item))
        total = len(items)
        pin_threads(threads)
        click.echo(f"{_describe(det)}; {total} videos -> {output}", err=True)
        progress: BatchProgress[DetectReport] = BatchProgress(total)

        def finished(i: int, r: ItemResult) -> None:
            tag = progress.tag(i, r.source)
            if r.status == "failed":
                click.echo(f"{tag}: FAILED: {r.error} (no scores or events written)", err=True)
            elif r.status == "interrupted":
                click.echo(f"{tag}: stopped by {r.signal} after {r.frames} frames (no scores or events written)",
                           err=True)
            else:
                click.echo(f"{tag}: done: {r.frames} frames ({r.fps:.1f} fps), {r.extra['flagged']} flagged, "
                           f"{r.extra['events']} events -> {r.output}", err=True)

        results = run_items(items, lambda: det, progress.start, finished, manifest, run_item=detect_item, low=low,
                            hold=hold, max_frames=max_frames, overwrite=overwrite, threads=threads)
    finally:
        if manifest is not None:
            manifest.close()
    if total:
        click.echo(summarise_items(results, total, "scored"), err=True)
    stopped = next((r.signal for r in results if r.signal is not None), None)
    if stopped is not None:
        sys.exit(signal_exit_code(stopped))
    if any(r.status == "failed" for r in results):
        sys.exit(1)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("normal_data", nargs=-1)
@camera_option("Calibrate on camera N (with --max-frames).")
@click.option("--quantile", type=FiniteFloatRange(min=0, max=1, min_open=True),
              help="Threshold = this quantile of the normal scores (e.g. 0.99).")
@click.option("--max-false-alarm", type=FiniteFloatRange(min=0, max=1, max_open=True),
              help="Threshold such that at most this share of normal frames is flagged [default 0.01].")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the calibrated model here, a new .onnx file (default: replace MODEL, atomically).")
@click.option("--score", help="Score to calibrate: mse, ssim, patch[:N], ssim_patch[:N] (ssim × √patch), scene "
                              "(per-region statistics learned here), likelihood (variational), sequence (lstm) "
                              "[default: the card's, else from the model's outputs].")
@click.option("--smoothing", type=click.IntRange(min=1), metavar="K",
              help="Average the scores of the last K frames (causal); the normal data must be long enough "
                   "for the K frames to fill for most of its frames.")
@max_frames_option("Use at most this many normal frames.")
@click.option("--no-tolerance", is_flag=True,
              help="Fit the threshold to the normal frames as they are only; by default it also covers them 5 % "
                   "darker and brighter and moved by a quarter of a model pixel (camera changes, not anomalies).")
@overwrite_option
@threads_option
@device_option
@user_errors
def calibrate(model: str, normal_data: tuple[str, ...], camera: int | None, quantile: float | None,
              max_false_alarm: float | None, output: str | None, score: str | None, smoothing: int | None,
              max_frames: int | None, no_tolerance: bool, overwrite: bool, threads: int | None, device: str) -> None:
    """Learn MODEL's anomaly threshold from NORMAL_DATA (videos, image folders, folders of videos, streams).

    Runs the ONNX model itself (whatever its precision) over the normal frames and writes the
    threshold and the statistics of the normal scores into its card (MODEL itself, or -o NEW.onnx;
    an existing -o file is refused unless -y). Needs no torch.

    \b
    Examples:
      edge-ae calibrate hall.onnx normal_day.mp4 --max-false-alarm 0.01
      edge-ae calibrate hall.onnx --camera 0 --max-frames 600 -o hall_cam0.onnx
    """
    from edge_runtime.calibration import EXPOSURE_STEP, HELD_OUT_WEIGHT, SHIFT_PIXELS
    from edge_runtime.calibration import calibrate as run_calibration
    from edge_runtime.files import same_file
    from edge_runtime.outputs import check_file_output

    data: list[str | int] = [*normal_data, *([camera] if camera is not None else [])]
    if not data:
        raise click.UsageError("give NORMAL_DATA (videos, image folders) or --camera N")
    if camera is not None and max_frames is None:
        raise click.UsageError("--camera needs --max-frames (how many frames to learn from)")
    if output is not None and same_file(Path(output), Path(model)):
        output = None  # -o MODEL: in place, as without -o
    if output is not None:
        check_file_output(Path(output), (".onnx",), "an ONNX model", [model, *normal_data], overwrite)
    cal = run_calibration(model, data, max_false_alarm, quantile, output, score, smoothing, max_frames, device, threads,
                          tolerance=not no_tolerance, overwrite=overwrite)
    for warning in cal.warnings:
        click.echo(f"warning: {warning}", err=True)
    s, spec = cal.stats, cal.card.anomaly
    assert spec is not None  # calibration always writes the anomaly section
    click.echo(f"wrote {cal.written}: score {spec.score} (smoothing {spec.smoothing}), "
               f"threshold {cal.threshold:.6g} from {int(s['frames'])} normal frames "
               f"(mean {s['mean']:.4g}, p99 {s['p99']:.4g}, max {s['max']:.4g}); "
               f"{100 * s['false_alarm_on_calibration']:.2f} % of them flagged "
               f"(allowed {100 * s['max_false_alarm']:.2f} %)", err=True)
    if "threshold_in_sample" in s:
        click.echo(f"scene threshold {s['threshold_normal_frames']:.6g}: {s['threshold_in_sample']:.6g} ** "
                   f"{1 - HELD_OUT_WEIGHT:g} (scores against statistics fitted on the same frames: too tight) times "
                   f"{s['threshold_held_out']:.6g} ** {HELD_OUT_WEIGHT:g} (each clip against the other clips' "
                   "statistics: too loose)", err=True)
    if cal.threshold > s["threshold_normal_frames"]:
        click.echo(f"camera tolerance: threshold raised from {s['threshold_normal_frames']:.6g} (the normal frames "
                   f"alone) so that the normal frames {100 * EXPOSURE_STEP:g} % darker or brighter, or moved by "
                   f"{SHIFT_PIXELS:g} of a model pixel, are not flagged (--no-tolerance: without)", err=True)
    if cal.held_out:
        clips = ", ".join(f"{Path(str(name)).name} {100 * share:.1f} %" for name, _, share in cal.held_out)
        click.echo(f"leave-one-clip-out estimate of false alarms on new normal footage: mean "
                   f"{100 * s['false_alarm_held_out_mean']:.2f} %, worst {100 * s['false_alarm_held_out_worst']:.2f} % "
                   f"({clips})", err=True)
        if "threshold_in_sample" in s:  # scene: per-cell statistics of fewer clips than the card's
            click.echo("  (an upper estimate for the scene score: each clip is scored against the statistics of the "
                       "other clips only, looser than all the clips' together; on Ped2 the held-out clips' own rate "
                       "was several times lower; more normal clips bring it down)", err=True)
