"""A real RTSP server on 127.0.0.1 for the tests: plays the clean clip, H.264, looped, at a given fps.

    python tests/edge_runtime/rtsp_server.py PORT [--fps 30]

Prints one line (``serving rtsp://127.0.0.1:PORT/stream``) once it listens, then serves until killed.
The server is rtsp-rs (from the [dev] extra); frames are encoded with PyAV's libx264.
"""

from __future__ import annotations

import argparse
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2

CLIP = Path(__file__).resolve().parents[1] / "data" / "intel_asl_again.mkv"


def encode_clip(path: Path, width: int = 320) -> list[bytes]:
    """The clip's frames as H.264 Annex B access units (a key frame, with its headers, every 15 frames)."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(cv2.resize(f, (width, width * f.shape[0] // f.shape[1] // 2 * 2), interpolation=cv2.INTER_AREA))
    cap.release()
    h, w = frames[0].shape[:2]
    codec = av.CodecContext.create("libx264", "w")
    codec.width, codec.height, codec.pix_fmt = w, h, "yuv420p"
    codec.time_base = Fraction(1, 30)
    codec.options = {"preset": "ultrafast", "tune": "zerolatency", "g": "15", "bf": "0"}
    units: list[bytes] = []
    for i, f in enumerate(frames):
        vf = av.VideoFrame.from_ndarray(f, format="bgr24")
        vf.pts = i
        units += [bytes(p) for p in codec.encode(vf)]
    units += [bytes(p) for p in codec.encode(None)]
    return units


def main() -> None:
    import rtsp

    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--fps", type=float, default=30.0)
    args = ap.parse_args()
    units = encode_clip(CLIP)
    server = rtsp.Server(f"127.0.0.1:{args.port}")
    server.start()
    print(f"serving rtsp://127.0.0.1:{args.port}/stream", flush=True)
    step = round(90000 / args.fps)
    due = time.monotonic()
    i = 0
    while True:
        server.send_frame(units[i % len(units)], step)
        i += 1
        due += 1 / args.fps
        time.sleep(max(0.0, due - time.monotonic()))


if __name__ == "__main__":
    sys.exit(main())
