"""Keep a video's soundtrack: remux the input's audio into a denoised video with an ffmpeg binary.

OpenCV writes video only. The ffmpeg binary comes from the optional ``imageio-ffmpeg`` package
(``pip install 'edge-ae[video]'``), the ``EDGE_AE_FFMPEG`` environment variable, or the system
``PATH``, in that order of preference after the variable. Without one, audio is dropped and the
caller is told so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from edge_runtime.files import temp_beside

_AUDIO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Audio: ")
NO_FFMPEG = ("no ffmpeg binary found, so an audio track, if the input has one, was not kept; "
             "install one with: pip install 'edge-ae[video]' (or put ffmpeg on PATH)")


def find_ffmpeg() -> str | None:
    """Path of an ffmpeg binary: $EDGE_AE_FFMPEG, imageio-ffmpeg's, or one on PATH; None if none."""
    env = os.environ.get("EDGE_AE_FFMPEG")
    if env:
        return env if Path(env).is_file() else None
    try:
        import imageio_ffmpeg  # optional: the [video] extra

        exe = imageio_ffmpeg.get_ffmpeg_exe()
        if exe and Path(exe).is_file():
            return exe
    except Exception:  # not installed, or its binary is missing for this platform
        pass
    return shutil.which("ffmpeg")


def probe(path: Path, ffmpeg: str) -> str:
    """ffmpeg's description of ``path`` (its stream list), as text."""
    run = subprocess.run([ffmpeg, "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, text=True,
                         errors="replace", timeout=60)
    return run.stderr


def has_audio(path: Path, ffmpeg: str) -> bool:
    """Whether ``path`` has at least one audio stream."""
    return bool(_AUDIO_STREAM.search(probe(path, ffmpeg)))


def remux_audio(video: Path, audio_from: Path, duration: float | None = None, ffmpeg: str | None = None) -> str:
    """Add ``audio_from``'s audio to ``video`` in place (via a temporary file); say what happened.

    The video stream is copied, not re-encoded; the audio is copied when the container takes
    it, else encoded to AAC; with ``duration`` (seconds of video) the audio read is cut there, so
    an interrupted run keeps the matching part. (``-shortest`` is not used: it can drop the last
    video frame.) Returns a one-line note; ``video`` is left unchanged when audio cannot be added.
    """
    ffmpeg = ffmpeg or find_ffmpeg()
    if ffmpeg is None:
        return NO_FFMPEG
    try:
        if not has_audio(audio_from, ffmpeg):
            return f"{audio_from.name} has no audio track"
    except (OSError, subprocess.SubprocessError) as e:
        return f"audio not kept: cannot run {ffmpeg} ({e})"
    tmp = temp_beside(video, f".audio{video.suffix}")
    last = ""
    try:
        for audio_codec in ("copy", "aac"):
            cut = ["-t", f"{duration:.3f}"] if duration else []
            cmd = [ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", str(video), *cut,
                   "-i", str(audio_from), "-map", "0:v:0", "-map", "1:a?", "-c:v", "copy", "-c:a", audio_codec,
                   str(tmp)]
            try:
                run = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600)
            except (OSError, subprocess.SubprocessError) as e:
                return f"audio not kept: running {ffmpeg} failed ({e})"
            if run.returncode == 0 and tmp.stat().st_size > 0:
                os.replace(tmp, video)
                how = "copied" if audio_codec == "copy" else "re-encoded to AAC"
                return f"audio track kept ({how}) from {audio_from.name}"
            last = (run.stderr.strip().splitlines() or ["unknown error"])[-1]
        return f"audio not kept: ffmpeg could not remux it ({last})"
    finally:
        tmp.unlink(missing_ok=True)
