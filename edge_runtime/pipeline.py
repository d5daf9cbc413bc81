"""Source -> model -> sinks, with timing figures; Ctrl-C ends cleanly with every output finalised."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edge_runtime.errors import OutputError
from edge_runtime.sinks import (
    VIDEO_OUT_SUFFIXES,
    ImageFolderSink,
    VideoSink,
    WindowSink,
    check_writable,
    same_file,
    write_image_atomic,
)
from edge_runtime.sources import IMAGE_SUFFIXES, ImageSource, Source


@dataclass
class RunReport:
    """What a run did: counts and timings."""

    frames: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    dropped: int = 0
    interrupted: bool = False
    outputs: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def model_ms(self) -> float:
        return 1000 * self.model_seconds / self.frames if self.frames else 0.0


class _Outputs:
    """The sinks of one run, chosen from the output path and the source kind."""

    def __init__(self, source: Source, output: Path | None, window: WindowSink | None) -> None:
        self.video: VideoSink | None = None
        self.folder: ImageFolderSink | None = None
        self.image: Path | None = None
        self.window = window
        self.output = output
        self.source = source
        if output is None:
            return
        if source.path is not None and (same_file(source.path, output) or same_file(output, source.path)):
            msg = f"{output}: the output is the input; choose another output so the input is kept"
            raise OutputError(msg)
        if isinstance(source, ImageSource) and source.path is not None and source.path.is_dir():
            if output.suffix:
                msg = f"{output}: the input is a folder, so the output must be a folder (no file extension)"
                raise OutputError(msg)
            self.folder = ImageFolderSink(output)
        elif isinstance(source, ImageSource):
            if output.suffix.lower() not in IMAGE_SUFFIXES:
                msg = f"{output}: the input is an image, so the output must be an image ({', '.join(IMAGE_SUFFIXES)})"
                raise OutputError(msg)
            check_writable(output)
            self.image = output
        else:
            if output.suffix.lower() not in VIDEO_OUT_SUFFIXES:
                msg = f"{output}: the input is a video, so the output must be a video ({', '.join(VIDEO_OUT_SUFFIXES)})"
                raise OutputError(msg)
            # Created on the first frame, when the size is certain.

    def write(self, original: np.ndarray, result: np.ndarray, name: str | None) -> bool:
        if self.output is not None:
            if self.folder is not None:
                self.folder.write(result, name or "frame.png")
            elif self.image is not None:
                write_image_atomic(self.image, result)
            else:
                if self.video is None:
                    fps = self.source.fps or 30.0
                    self.video = VideoSink(self.output, fps, (result.shape[1], result.shape[0]))
                self.video.write(result)
        if self.window is not None:
            return self.window.show(original, result)
        return True

    def finish(self) -> list[str]:
        done = []
        if self.video is not None:
            self.video.close()
            if self.video.frames:
                done.append(str(self.video.path))
        if self.folder is not None or self.image is not None:
            done.append(str(self.output))
        if self.window is not None:
            self.window.close()
        return done

    def abort(self) -> None:
        if self.video is not None:
            self.video.abort()
        if self.window is not None:
            self.window.close()


def run_pipeline(
    source: Source,
    process: Callable[[np.ndarray], np.ndarray],
    output: str | Path | None = None,
    window: WindowSink | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[RunReport], None] | None = None,
) -> RunReport:
    """Run every frame of ``source`` through ``process`` into the outputs.

    Ctrl-C stops after the frame in flight and finalises the outputs (the video so far is kept,
    playable); any other error removes the unfinished video and is re-raised.
    """
    outputs = _Outputs(source, Path(output) if output is not None else None, window)
    report = RunReport()
    start = time.perf_counter()
    try:
        for frame in source:
            t0 = time.perf_counter()
            result = process(frame.image)
            report.model_seconds += time.perf_counter() - t0
            keep_going = outputs.write(frame.image, result, frame.name)
            report.frames += 1
            report.dropped = source.dropped
            report.seconds = time.perf_counter() - start
            if on_frame is not None:
                on_frame(report)
            if not keep_going or (max_frames is not None and report.frames >= max_frames):
                break
    except KeyboardInterrupt:
        report.interrupted = True
    except BaseException:
        outputs.abort()
        raise
    report.seconds = time.perf_counter() - start
    report.outputs = outputs.finish()
    return report
