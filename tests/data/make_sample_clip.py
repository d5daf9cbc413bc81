"""Recreate edge_runtime/samples/sample.mp4 from the clean Intel clip (needs imageio-ffmpeg)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

HERE = Path(__file__).parent
OUT = HERE.parents[1] / "edge_runtime" / "samples" / "sample.mp4"


def main() -> None:
    cap = cv2.VideoCapture(str(HERE / "intel_asl_again.mkv"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    rng = np.random.default_rng(7)
    w, h = 480, 360
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "bgr24",
           "-s", f"{w}x{h}", "-r", "15", "-i", "-", "-c:v", "libx264", "-preset", "slow", "-crf", "22",
           "-pix_fmt", "yuv420p", "-movflags", "+faststart", str(OUT)]
    enc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert enc.stdin is not None
    for f in frames[0:76:2]:
        x = cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(0.01 * x + 0.04**2)
        enc.stdin.write((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8).tobytes())
    enc.stdin.close()
    sys.exit(enc.wait())


if __name__ == "__main__":
    main()
