"""Source -> model -> sinks, with timing figures; Ctrl-C and SIGTERM end cleanly with every output finalised.

For files, decoding, the model and writing run on three threads joined by small bounded queues,
so the model is rarely kept waiting and memory stays bounded; every frame goes through, in order.
Live sources already read on their own thread and hand over only their newest frame.

The model step returns a result per frame (a denoised frame, an anomaly score, ...); a sink
(``ResultSink``) writes the results on the writer thread. A path as the output means the frame
sink of ``edge_runtime.sinks``: a video, an image or a folder, chosen from the path and the source.
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
from typing import Any, Generic, Protocol, TypeVar, overload

import numpy as np

from edge_runtime.media import Encoding
from edge_runtime.sinks import FrameSink, WindowSink
from edge_runtime.sources import Frame, Source

QUEUE_FRAMES = 8  # frames buffered between stages: enough to ride out jitter, small enough for memory
_POLL = 0.1  # seconds between checks for a stop request while a stage waits

R = TypeVar("R")
R_contra = TypeVar("R_contra", contravariant=True)


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
    signal: str | None = None  # "SIGINT" / "SIGTERM" / "SIGHUP" when a signal ended the run
    problems: list[str] = field(default_factory=list)  # the source's: images skipped, a video that ended early

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def model_ms(self) -> float:
        return 1000 * self.model_seconds / self.frames if self.frames else 0.0


class ResultSink(Protocol[R_contra]):
    """Where the results of a run go; ``run_pipeline`` calls ``prepare`` once, ``write`` per frame, then
    ``finish`` (also after Ctrl-C) or ``abort`` (after an error)."""

    notes: list[str]  # remarks for the user, e.g. what happened to the audio track

    def prepare(self, frame: Frame, result: R_contra) -> None:
        """The first result, on the model thread: open what needs its size, so a bad output fails early."""

    def write(self, frame: Frame, result: R_contra) -> None:
        """One result, on the writer thread, in frame order."""

    def finish(self) -> list[str]:
        """Finalise every output; the outputs written."""
        ...

    def abort(self) -> None:
        """Remove what is unfinished (a video under its temporary name)."""


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


# SIGHUP (the terminal closed) ends a run like SIGTERM; it does not exist on Windows.
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class _Signals:
    """While active, SIGINT, SIGTERM and SIGHUP ask the run to stop after the frame in flight.

    A second SIGINT while frames are still being processed interrupts the frame in flight (once);
    once the outputs are being finalised (``finishing``), or while ``hold`` is set, further signals
    are only noted: what was done is always kept.
    """

    def __init__(self, stop: _Stop) -> None:
        self.stop = stop
        self.saved: dict[int, Any] = {}
        self.finishing = False
        self.hold = False
        self.raised = False

    def __enter__(self) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set handlers; Ctrl-C still raises KeyboardInterrupt there
        for sig in STOP_SIGNALS:
            self.saved[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set() and signum == signal.SIGINT and not (self.finishing or self.hold or self.raised):
            self.raised = True
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
                if self.stop.is_set() or (not self.is_alive() and self.queue.empty()):
                    if self.error is not None:
                        raise self.error from None
                    return
                continue
            if item is _END:
                if self.error is not None:
                    raise self.error
                return
            yield item


class _Writer(threading.Thread, Generic[R]):
    """Writes results behind the model, in order; drains its queue before it ends."""

    def __init__(self, sink: ResultSink[R], report: RunReport, size: int) -> None:
        super().__init__(name="edge-ae encode", daemon=True)
        self.sink, self.report = sink, report
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
                self.sink.write(frame, result)
            except BaseException as e:
                self.error = e
                continue
            self.written += 1
            if frame.captured is not None:
                lat = 1000 * (time.monotonic() - frame.captured)
                self.report.latency_ms = lat
                self.report.max_latency_ms = max(self.report.max_latency_ms, lat)

    def put(self, item: tuple[Frame, R]) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self.queue.put(item, timeout=_POLL)
                return
            except queue.Full:
                if not self.is_alive():
                    return


@overload
def run_pipeline(
    source: Source,
    process: Callable[[np.ndarray], np.ndarray],
    output: str | Path | ResultSink[np.ndarray] | None = None,
    window: WindowSink | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[RunReport], None] | None = None,
    audio: bool = True,
    encoding: Encoding | None = None,
    overwrite: bool = True,
    queue_frames: int = QUEUE_FRAMES,
    handle_signals: bool = True,
    report: RunReport | None = None,
) -> RunReport: ...


@overload
def run_pipeline(
    source: Source,
    process: Callable[[np.ndarray], R],
    output: ResultSink[R],
    window: None = None,
    max_frames: int | None = None,
    on_frame: Callable[[RunReport], None] | None = None,
    audio: bool = True,
    encoding: Encoding | None = None,
    overwrite: bool = True,
    queue_frames: int = QUEUE_FRAMES,
    handle_signals: bool = True,
    report: RunReport | None = None,
) -> RunReport: ...


def run_pipeline(
    source: Source,
    process: Callable[[np.ndarray], Any],
    output: str | Path | ResultSink[Any] | None = None,
    window: WindowSink | None = None,
    max_frames: int | None = None,
    on_frame: Callable[[RunReport], None] | None = None,
    audio: bool = True,
    encoding: Encoding | None = None,
    overwrite: bool = True,
    queue_frames: int = QUEUE_FRAMES,
    handle_signals: bool = True,
    report: RunReport | None = None,
) -> RunReport:
    """Run every frame of ``source`` through ``process`` into ``output``.

    ``output``: a path (a video, an image or a folder of images for frame results; see
    ``edge_runtime.sinks.FrameSink``), a ``ResultSink``, or None (nothing written: ``window`` only).
    ``window`` shows input and result side by side (frame results). ``report``: fill this report
    (a subclass that a sink also updates) instead of a new one; it is updated during the run and
    handed to ``on_frame`` after every frame.

    SIGINT (Ctrl-C), SIGTERM or SIGHUP stops after the frame in flight and finalises the outputs
    (the video so far is kept, playable; a second Ctrl-C stops the frame in flight, and signals
    while the outputs are finalised are ignored); any other error removes the unfinished video and
    is re-raised. ``report.problems`` holds what the source found wrong with the input it read to
    the end (images skipped, a video that ended early). For a path: ``audio`` copies a video
    file's audio and subtitle streams into the output video (the outcome is in ``notes``), ``encoding``
    overrides the codec and quality (default: the input's codec family at
    ``edge_runtime.encoder.DEFAULT_CRF``), and ``overwrite=False`` refuses an existing output.
    Signal handlers are installed only when called from the main thread and ``handle_signals``.

    A ``process`` with a ``reset()`` method (a ``Denoiser.stream()``, which carries a recurrent model's
    state from frame to frame) is reset before the first frame and whenever a live source reconnects.
    """
    sink: ResultSink[Any] = (FrameSink(source, Path(output) if output is not None else None, audio, encoding, overwrite)
                             if output is None or isinstance(output, (str, Path)) else output)
    report = RunReport() if report is None else report
    stop = _Stop()
    stop.hooks.append(source.interrupt)
    writer: _Writer[Any] = _Writer(sink, report, queue_frames)
    reader = None if source.live else _Reader(source, stop, queue_frames)
    start = time.perf_counter()
    processed = 0
    exhausted = False  # the source ran out (a file's end, or a live source lost for good)
    # The handlers stay in place until every output is finalised, so a late signal cannot discard the work.
    signals = _Signals(stop) if handle_signals else None
    with signals if signals is not None else contextlib.nullcontext():
        try:
            writer.start()
            if reader is not None:
                reader.start()
            frames = iter(source) if reader is None else reader.frames()
            reset: Callable[[], None] | None = getattr(process, "reset", None)
            reconnects = getattr(source, "reconnects", 0)
            if reset is not None:
                reset()
            for frame in frames:
                if reset is not None and getattr(source, "reconnects", 0) != reconnects:
                    reconnects = getattr(source, "reconnects", 0)
                    reset()  # the frames before the loss say nothing about the ones after it
                t0 = time.perf_counter()
                result = process(frame.image)
                report.model_seconds += time.perf_counter() - t0
                if processed == 0:
                    _prepare(sink, frame, result, signals)
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
            if signals is not None:
                signals.finishing = True
            stop.request()
            _finish_threads(reader, writer)
            _close(window)
            sink.abort()
            raise
        if signals is not None:
            signals.finishing = True
        if stop.signal is not None:
            report.interrupted = True
            report.signal = stop.signal
        stop.request()  # ends the reader if it is still decoding ahead
        try:
            _finish_threads(reader, writer)
            if writer.error is not None:
                raise writer.error
        except BaseException:
            _close(window)
            sink.abort()
            raise
        report.frames = writer.written
        report.dropped = source.dropped
        report.seconds = time.perf_counter() - start
        _close(window)
        report.outputs = sink.finish()
    report.notes = sink.notes
    report.reconnects = getattr(source, "reconnects", 0)
    report.lost = source.live and exhausted and not report.interrupted
    report.problems = list(source.problems) if exhausted else []
    return report


def _prepare(sink: ResultSink[Any], frame: Frame, result: Any, signals: _Signals | None) -> None:
    """``sink.prepare`` with a second Ctrl-C held off, so an output is never left half-created."""
    if signals is not None:
        signals.hold = True
    try:
        sink.prepare(frame, result)
    finally:
        if signals is not None:
            signals.hold = False


def _close(window: WindowSink | None) -> None:
    if window is not None:
        window.close()


def _finish_threads(reader: _Reader | None, writer: _Writer[Any]) -> None:
    if reader is not None:
        reader.join()
    if writer.is_alive():
        writer.queue.put(_END)
        writer.join()
