"""A small HTTP MJPEG server that plays a video file as a live stream, for trying and testing live input.

    python -m edge_runtime.stream_server clip.mp4 --port 8090 --fps 30
    edge-ae denoise http://127.0.0.1:8090/ -o live.mp4

Each client gets the video from its first frame, paced at ``fps``, looped. Not meant for the open
internet: it binds to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "edgeaeframe"


def encode_video(path: Path, max_frames: int = 600, quality: int = 85, width: int | None = None) -> list[bytes]:
    """The first ``max_frames`` frames of ``path`` as JPEG images (resized to ``width`` if given)."""
    cap = cv2.VideoCapture(str(path))
    frames: list[bytes] = []
    while len(frames) < max_frames:
        ok, frame = cap.read()
        if not ok:
            break
        if width:
            frame = cv2.resize(frame, (width, round(frame.shape[0] * width / frame.shape[1] / 2) * 2),
                               interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            frames.append(buf.tobytes())
    cap.release()
    if not frames:
        msg = f"{path}: no frames could be read"
        raise ValueError(msg)
    return frames


class MJPEGServer(ThreadingHTTPServer):
    """Serves ``frames`` (JPEG bytes) as multipart/x-mixed-replace at ``fps``, looping."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, frames: list[bytes], fps: float, host: str = "127.0.0.1", port: int = 0,
                 loop: bool = True) -> None:
        self.frames, self.fps, self.loop = frames, fps, loop
        self.stopping = threading.Event()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/"

    def stop(self) -> None:
        """Stop serving and end every client's stream."""
        self.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: MJPEGServer

    def log_message(self, format: str, *args: object) -> None:  # quiet: one line per request is noise here
        pass

    def do_GET(self) -> None:
        srv = self.server
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace;boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        period = 1.0 / srv.fps
        due = time.monotonic()
        i = 0
        try:
            while not srv.stopping.is_set():
                if i == len(srv.frames):
                    if not srv.loop:
                        break
                    i = 0
                jpg = srv.frames[i]
                head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpg)}\r\n\r\n".encode()
                self.wfile.write(head + jpg + b"\r\n")
                i += 1
                due += period
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    due = time.monotonic()  # a slow client: do not burst to catch up
        except (BrokenPipeError, ConnectionResetError):
            pass


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m edge_runtime.stream_server", description=__doc__.splitlines()[0])
    ap.add_argument("video", type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8090)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--max-frames", type=int, default=600, help="frames of the video kept in memory and looped")
    ap.add_argument("--width", type=int, help="resize frames to this width (keeping the aspect ratio)")
    ap.add_argument("--no-loop", action="store_true", help="end each client's stream after the last frame")
    args = ap.parse_args(argv)
    frames = encode_video(args.video, args.max_frames, width=args.width)
    server = MJPEGServer(frames, args.fps, args.host, args.port, not args.no_loop)
    print(f"serving {args.video} at {server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stopping.set()
        server.server_close()
    sys.exit(0)


if __name__ == "__main__":
    main()
