"""Source -> model -> sinks, with timing figures; Ctrl-C and SIGTERM end cleanly with every output finalised.

For files, decoding, the model and encoding run on three threads joined by small bounded queues,
so the model is rarely kept waiting and memory stays bounded; every frame goes through, in order.
Live sources already read on their own thread and hand over only their newest frame.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import cv2
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
from edge_runtime.sources import IMAGE_SUFFIXES, Frame, ImageSource, Source, VideoSource

QUEUE_FRAMES = 8  # frames buffered between stages: enough to ride out jitter, small enough for memory
_POLL = 0.1  # seconds between checks for a stop request while a stage waits


@dataclass
class RunReport:
    """What a run did: counts and timings."""

    frames: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    dropped: int = 0
    interrupted: bool = False
    outputs: list[str] = field(default_factory=list)
    latency_ms: float = 0.0  # live sources: capture -> written, newest frame
    max_latency_ms: float = 0.0
    reconnects: int = 0
    lost: bool = False  # a live source stopped for good (gave up reconnecting, or reconnect off)
    notes: list[str] = field(default_factory=list)  # e.g. what happened to the audio track
    signal: str | None = None  # "SIGINT" / "SIGTERM" when a signal ended the run

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def model_ms(self) -> float:
        return 1000 * self.model_seconds / self.frames if self.frames else 0.0


class _Outputs:
    """The sinks of one run, chosen from the output path and the source kind."""

    def __init__(self, source: Source, output: Path | None, window: WindowSink | None, audio: bool = True) -> None:
        self.video: VideoSink | None = None
        self.folder: ImageFolderSink | None = None
        self.image: Path | None = None
        self.window = window
        self.output = output
        self.source = source
        self.audio_from = source.path if audio and isinstance(source, VideoSource) else None
        self.notes: list[str] = []
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
            check_writable(output)
            # The writer is created on the first frame, when the size is certain.

    def open(self, first: np.ndarray) -> None:
        """Create the video writer for frames like ``first`` (so a bad output fails before any progress)."""
        if self.output is not None and self.folder is None and self.image is None and self.video is None:
            fps = self.source.fps or 30.0
            self.video = VideoSink(self.output, fps, (first.shape[1], first.shape[0]), audio_from=self.audio_from)

    def write(self, result: np.ndarray, name: str | None) -> None:
        if self.output is None:
            return
        if self.folder is not None:
            self.folder.write(result, name or "frame.png")
        elif self.image is not None:
            write_image_atomic(self.image, result)
        else:
            self.open(result)
            assert self.video is not None
            size = self.video.size
            if self.source.live and (result.shape[1], result.shape[0]) != size:
                # A camera or stream that came back at another size: keep one playable video.
                if not any(n.startswith("resized") for n in self.notes):
                    self.notes.append(f"resized frames of {result.shape[1]}x{result.shape[0]} to the video's "
                                      f"{size[0]}x{size[1]} after the source changed size")
                result = cv2.resize(result, size, interpolation=cv2.INTER_AREA)
            self.video.write(result)

    def finish(self) -> list[str]:
        done = []
        if self.video is not None:
            self.video.close()
            if self.video.note:
                self.notes.append(self.video.note)
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


class _Stop:
    """A stop request: set by SIGINT/SIGTERM (first one: finish the frame in flight), or by a stage."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal: str | None = None
        self.hooks: list[Callable[[], None]] = []

    def request(self, signame: str | None = None) -> None:
        if signame and self.signal is None:
            self.signal = signame
        self.event.set()
        for hook in self.hooks:
            hook()

    def is_set(self) -> bool:
        return self.event.is_set()


class _Signals:
    """While active, SIGINT and SIGTERM ask the run to stop; a second SIGINT interrupts at once."""

    def __init__(self, stop: _Stop) -> None:
        self.stop = stop
        self.saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers; Ctrl-C still raises KeyboardInterrupt there
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.request(name)

    def __exit__(self, *exc: object) -> None:
        for sig, old in self.saved.items():
            signal.signal(sig, old)


_END = object()


class _Reader(threading.Thread):
    """Decodes a file source ahead of the model into a bounded queue, in order."""

    def __init__(self, source: Source, stop: _Stop, size: int) -> None:
        super().__init__(name="edge-ae decode", daemon=True)
        self.source, self.stop = source, stop
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for frame in self.source:
                if not self._put(frame):
                    return
        except BaseException as e:  # handed to the main thread, which re-raises it
            self.error = e
        self._put(_END)

    def _put(self, item: object) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def frames(self) -> Iterator[Frame]:
        while True:
            try:
                item = self.queue.get(timeout=_POLL)
            except queue.Empty:
                if self.stop.is_set() or not self.is_alive() and self.queue.empty():
                    if self.error is not None:
                        raise self.error
                    return
                continue
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item


class _Writer(threading.Thread):
    """Encodes results behind the model, in order; drains its queue before it ends."""

    def __init__(self, outputs: _Outputs, report: RunReport, size: int) -> None:
        super().__init__(name="edge-ae encode", daemon=True)
        self.outputs, self.report = outputs, report
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=size)
        self.error: BaseException | None = None
        self.written = 0

    def run(self) -> None:
        while True:
            item = self.queue.get()
            if item is _END:
                return
            if self.error is not None:
                continue  # keep draining so the model thread never blocks on a dead writer
            frame, result = item
            try:
                self.outputs.write(result, frame.name)
            except BaseException as e:
                self.error = e
                continue
            self.written += 1
            if frame.captured is not None:
                lat = 1000 * (time.monotonic() - frame.captured)
                self.report.latency_ms = lat
                self.report.max_latency_ms = max(self.report.max_latency_ms, lat)

    def put(self, item: object) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                if not self.is_alive():
                    return


def run_pipeline(
    source: Source,
    process: Callable[[np.ndarray], np.ndarray],
    output: str | Path | None = None,
    window: WindowSink | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[RunReport], None] | None = None,
    audio: bool = True,
    queue_frames: int = QUEUE_FRAMES,
    handle_signals: bool = True,
) -> RunReport:
    """Run every frame of ``source`` through ``process`` into the outputs.

    SIGINT (Ctrl-C) or SIGTERM stops after the frame in flight and finalises the outputs (the
    video so far is kept, playable; a second Ctrl-C stops at once, still finalising); any other
    error removes the unfinished video and is re-raised. ``audio``: remux a video file's audio
    into the output video when an ffmpeg binary is available (the outcome is in ``notes``).
    Signal handlers are installed only when called from the main thread and ``handle_signals``.
    """
    outputs = _Outputs(source, Path(output) if output is not None else None, window, audio)
    report = RunReport()
    stop = _Stop()
    stop.hooks.append(source.interrupt)
    writer = _Writer(outputs, report, queue_frames)
    reader = None if source.live else _Reader(source, stop, queue_frames)
    start = time.perf_counter()
    processed = 0
    exhausted = False  # the source ran out (a file's end, or a live source lost for good)
    try:
        with _Signals(stop) if handle_signals else contextlib.nullcontext():
            writer.start()
            if reader is not None:
                reader.start()
            frames = iter(source) if reader is None else reader.frames()
            for frame in frames:
                t0 = time.perf_counter()
                result = process(frame.image)
                report.model_seconds += time.perf_counter() - t0
                if processed == 0:
                    outputs.open(result)
                writer.put((frame, result))
                processed += 1
                report.frames = processed
                report.dropped = source.dropped
                report.seconds = time.perf_counter() - start
                keep_going = window.show(frame.image, result) if window is not None else True
                if on_frame is not None:
                    on_frame(report)
                if not keep_going or stop.is_set() or (max_frames is not None and processed >= max_frames):
                    break
            else:
                exhausted = True
    except KeyboardInterrupt:
        stop.request("SIGINT")
    except BaseException:
        stop.request()
        _finish_threads(reader, writer)
        outputs.abort()
        raise
    if stop.signal is not None:
        report.interrupted = True
        report.signal = stop.signal
    stop.request()  # ends the reader if it is still decoding ahead
    try:
        _finish_threads(reader, writer)
        if writer.error is not None:
            raise writer.error
    except BaseException:
        outputs.abort()
        raise
    report.frames = writer.written
    report.dropped = source.dropped
    report.seconds = time.perf_counter() - start
    report.outputs = outputs.finish()
    report.notes = outputs.notes
    report.reconnects = getattr(source, "reconnects", 0)
    report.lost = source.live and exhausted and not report.interrupted
    return report


def _finish_threads(reader: _Reader | None, writer: _Writer) -> None:
    if reader is not None:
        reader.join()
    if writer.is_alive():
        writer.queue.put(_END)
        writer.join()
