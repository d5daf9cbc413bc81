"""Pictures of anomaly scores with OpenCV: a heat-map overlay with a score bar, and a score timeline."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from edge_runtime.events import Event

BAR = 22  # pixels of the score bar under the frame
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def heat_overlay(frame: np.ndarray, error_map: np.ndarray, scale: float | None, alpha: float = 0.45) -> np.ndarray:
    """``frame`` (BGR or grey) with the error map, resized to it, blended in as a JET heat map.

    ``scale`` is the error that shows as full red (default: this map's maximum).
    """
    bgr = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR) if frame.ndim == 2 else frame
    h, w = bgr.shape[:2]
    top = scale if scale and scale > 0 else float(error_map.max()) or 1.0
    levels = np.clip(error_map / top * 255.0, 0, 255).astype(np.uint8)
    heat = cv2.applyColorMap(cv2.resize(levels, (w, h), interpolation=cv2.INTER_LINEAR), cv2.COLORMAP_JET)
    return cv2.addWeighted(bgr, 1.0 - alpha, heat, alpha, 0.0)


def score_bar(image: np.ndarray, score: float, threshold: float, flag: bool, label: str = "") -> np.ndarray:
    """``image`` with a bar below it: filled in proportion to score / (2 x threshold), red when flagged."""
    h, w = image.shape[:2]
    out = np.zeros((h + BAR, w, 3), np.uint8)
    out[:h] = image
    out[h:] = (40, 40, 40)
    share = min(max(score / (2.0 * threshold), 0.0), 1.0) if threshold > 0 else 1.0
    colour = (0, 0, 230) if flag else (0, 170, 0)
    cv2.rectangle(out, (0, h + 3), (int(share * (w - 1)), h + BAR - 4), colour, -1)
    cv2.line(out, (w // 2, h), (w // 2, h + BAR - 1), (255, 255, 255), 1)
    text = f"{label}score {score:.4g} / {threshold:.4g}{'  ANOMALY' if flag else ''}"
    cv2.putText(out, text, (4, h + BAR - 7), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def annotate(frame: np.ndarray, error_map: np.ndarray, score: float, threshold: float, flag: bool,
             scale: float | None) -> np.ndarray:
    return score_bar(heat_overlay(frame, error_map, scale), score, threshold, flag)


def _tick_step(span: float, most: int = 8) -> float:
    """A round tick spacing (1, 2 or 5 times a power of ten) giving at most ``most`` ticks over ``span``."""
    raw = max(span, 1e-9) / most
    base = 10.0 ** np.floor(np.log10(raw))
    return float(next(m * base for m in (1, 2, 5, 10) if m * base >= raw))


def timeline(scores: Sequence[float], threshold: float, low: float, events: Sequence[Event],
             width: int = 1200, height: int = 320, title: str = "", fps: float | None = None) -> np.ndarray:
    """A score-per-frame plot: scores in blue, the threshold in red, the release level dashed, events shaded,
    with a legend. The x axis is in seconds at ``fps`` frames per second (in frames without one)."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, right, top, bottom = 70, 15, 28, 36
    pw, ph = width - left - right, height - top - bottom
    s = np.asarray(scores, np.float64)
    n = max(len(s), 2)
    ymax = max(float(s.max()) if s.size else 0.0, threshold) * 1.1 or 1.0
    per_unit = fps if fps and fps > 0 else 1.0  # frames per x-axis unit

    def px(i: float) -> int:
        return left + round(i / (n - 1) * (pw - 1))

    def py(v: float) -> int:
        return top + ph - 1 - round(min(v, ymax) / ymax * (ph - 1))

    for ev in events:
        cv2.rectangle(img, (px(ev.start_frame), top), (max(px(ev.end_frame), px(ev.start_frame) + 1), top + ph - 1),
                      (200, 200, 255), -1)
    cv2.rectangle(img, (left, top), (left + pw - 1, top + ph - 1), (0, 0, 0), 1)
    if s.size:
        pts = np.stack([[px(i) for i in range(len(s))], [py(v) for v in s]], axis=1).astype(np.int32)
        cv2.polylines(img, [pts], False, (180, 80, 0), 1, cv2.LINE_AA)
    cv2.line(img, (left, py(threshold)), (left + pw - 1, py(threshold)), (0, 0, 220), 1)
    for x in range(left, left + pw - 1, 12):
        cv2.line(img, (x, py(low)), (min(x + 6, left + pw - 1), py(low)), (0, 120, 220), 1)
    for v in (0.0, ymax / 2, ymax / 1.1):
        cv2.putText(img, f"{v:.3g}", (4, py(v) + 4), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    span = (n - 1) / per_unit
    step = _tick_step(span) if fps else max(1.0, _tick_step(span))
    for t in np.arange(0.0, span + 1e-9, step):
        x = px(t * per_unit)
        cv2.line(img, (x, top + ph - 1), (x, top + ph + 3), (0, 0, 0), 1)
        label = f"{t:g}" if step < 1 else f"{round(t)}"
        cv2.putText(img, label, (x - 4 * len(label), top + ph + 16), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    unit = "time (s)" if fps else "frame"
    cv2.putText(img, unit, (left + pw // 2 - 30, height - 4), _FONT, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    # legend, top right inside the plot
    items = [("score", (180, 80, 0), "line"), ("threshold", (0, 0, 220), "line"),
             ("release level", (0, 120, 220), "dash"), ("event", (200, 200, 255), "box")]
    lx, ly = left + pw - 150, top + 8
    cv2.rectangle(img, (lx - 6, ly - 4), (left + pw - 6, ly + 16 * len(items)), (255, 255, 255), -1)
    cv2.rectangle(img, (lx - 6, ly - 4), (left + pw - 6, ly + 16 * len(items)), (120, 120, 120), 1)
    for k, (name, colour, kind) in enumerate(items):
        y = ly + 16 * k + 6
        if kind == "box":
            cv2.rectangle(img, (lx, y - 5), (lx + 24, y + 5), colour, -1)
        elif kind == "dash":
            cv2.line(img, (lx, y), (lx + 8, y), colour, 1)
            cv2.line(img, (lx + 14, y), (lx + 24, y), colour, 1)
        else:
            cv2.line(img, (lx, y), (lx + 24, y), colour, 2)
        cv2.putText(img, name, (lx + 32, y + 4), _FONT, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    head = f"{title}  threshold {threshold:.4g}, {len(events)} event(s)"
    cv2.putText(img, head.strip(), (left, 18), _FONT, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return img
