"""Anomaly events with hysteresis, and the per-frame score and per-event logs.

An event opens on the first frame whose score is above the threshold and closes only after the
score has stayed below a lower level (``low``) for ``hold`` frames in a row: one passing car whose
score wobbles around the threshold is one event, not twenty. The event ends on its last frame at
or above ``low``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from edge_runtime.errors import OutputError

HOLD = 5  # frames below the release level that close an event
RELEASE = 0.8  # release level: this share of the way from the normal median score to the threshold


@dataclass(frozen=True)
class Event:
    """One anomalous run of frames."""

    start_frame: int
    start_time: float
    end_frame: int
    end_time: float
    peak_frame: int
    peak_time: float
    peak_score: float
    frames: int  # end_frame - start_frame + 1


class EventTracker:
    """Feed it one score per frame in order; it returns each event when the event closes."""

    def __init__(self, threshold: float, low: float | None = None, hold: int = HOLD) -> None:
        low = threshold if low is None else low
        if not low <= threshold:
            msg = f"the release level {low:g} is above the threshold {threshold:g}; it must be at or below it"
            raise ValueError(msg)
        if hold < 1:
            msg = f"hold is {hold}; expected at least 1 frame"
            raise ValueError(msg)
        self.threshold, self.low, self.hold = threshold, low, hold
        self._open: dict[str, float | int] | None = None
        self._below = 0

    @property
    def active(self) -> bool:
        return self._open is not None

    def update(self, frame: int, time: float, score: float) -> Event | None:
        """Account for one frame; returns the event that this frame closes, if any."""
        ev = self._open
        if ev is None:
            if score > self.threshold:
                self._open = {"start_frame": frame, "start_time": time, "end_frame": frame, "end_time": time,
                              "peak_frame": frame, "peak_time": time, "peak_score": score}
                self._below = 0
            return None
        if score > ev["peak_score"]:
            ev.update(peak_frame=frame, peak_time=time, peak_score=score)
        if score >= self.low:
            ev.update(end_frame=frame, end_time=time)
            self._below = 0
            return None
        self._below += 1
        if self._below >= self.hold:
            return self._close()
        return None

    def finish(self) -> Event | None:
        """Close the event still open at the end of the stream, if any."""
        return self._close() if self._open is not None else None

    @property
    def peak_frame(self) -> int | None:
        """The peak frame of the open event (to keep its image for a snapshot)."""
        return int(self._open["peak_frame"]) if self._open is not None else None

    def _close(self) -> Event:
        ev = self._open
        assert ev is not None
        self._open = None
        self._below = 0
        return Event(int(ev["start_frame"]), float(ev["start_time"]), int(ev["end_frame"]), float(ev["end_time"]),
                     int(ev["peak_frame"]), float(ev["peak_time"]), float(ev["peak_score"]),
                     int(ev["end_frame"]) - int(ev["start_frame"]) + 1)


def release_level(threshold: float, stats: dict[str, float] | None = None, release: float = RELEASE) -> float:
    """The release level of events: ``release`` of the way from the median score of the normal
    calibration frames (the card's ``p50``) up to the threshold, or ``release`` x threshold when the card
    has no such statistic. Reconstruction errors never fall to zero: a release level at 0.8 x threshold can
    lie below every normal frame's score, and an event opened there would never close."""
    base = (stats or {}).get("p50")
    if base is None or not 0.0 <= base < threshold:
        base = 0.0
    return base + release * (threshold - base)


def find_events(scores: list[float], threshold: float, low: float | None = None, hold: int = HOLD,
                fps: float | None = None) -> list[Event]:
    """Every event in a whole sequence of scores (frame i at time i / fps, or i without fps)."""
    tracker = EventTracker(threshold, low, hold)
    out = []
    for i, s in enumerate(scores):
        ev = tracker.update(i, i / fps if fps else float(i), s)
        if ev is not None:
            out.append(ev)
    last = tracker.finish()
    return out + ([last] if last is not None else [])


def _open_text(path: Path, what: str) -> IO[str]:
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        msg = f"{path}: folder {parent} does not exist (for the {what})"
        raise OutputError(msg)
    if path.is_dir():
        msg = f"{path}: is a folder; the {what} needs a file name"
        raise OutputError(msg)
    try:
        return open(path, "w", newline="", encoding="utf-8")
    except OSError as e:
        msg = f"{path}: cannot write the {what} ({e.strerror})"
        raise OutputError(msg) from None


class EventLog:
    """events.jsonl: one JSON object per event, written and flushed when the event closes."""

    def __init__(self, path: str | Path, extra: dict[str, object] | None = None) -> None:
        self.path = Path(path)
        self.extra = extra or {}
        self._f = _open_text(self.path, "events log")
        self.count = 0

    def write(self, event: Event, **more: object) -> None:
        record = {**asdict(event), **self.extra, **more}
        self._f.write(json.dumps(record, sort_keys=True) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())
        self.count += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class ScoreLog:
    """scores.csv: frame, time, name, score, raw score, flag; one row per frame, flushed as it goes."""

    COLUMNS = ("frame", "time", "name", "score", "raw_score", "flag")

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._f = _open_text(self.path, "score log")
        self._w = csv.writer(self._f)
        self._w.writerow(self.COLUMNS)
        self._f.flush()
        self.rows = 0

    def write(self, frame: int, time: float, score: float, raw: float, flag: bool | None, name: str = "") -> None:
        self._w.writerow([frame, f"{time:.3f}", name, f"{score:.6g}", f"{raw:.6g}",
                          "" if flag is None else int(flag)])
        self._f.flush()
        self.rows += 1

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()
