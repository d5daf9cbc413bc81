"""Batch denoising of a folder of videos: Ray with 1 and 2 workers against 2 plain processes with --shard.

    python -m benchmarks.ray_batch [--videos /work/shared/data/videos] [--max-frames 60] [-m MODEL]

Starts a local Ray head on 127.0.0.1 (2 CPUs; stopped at the end), then runs `edge-ae denoise FOLDER -o OUT`
(every run with --threads 1 per worker, into a fresh folder, the same frames):
  ray-1: --ray=127.0.0.1:PORT --workers 1; ray-2: --workers 2; shards-2: --shard 1/2 and --shard 2/2 at once.
Prints frames, wall seconds (the whole command: start-up, model loading, every video) and frames/s; the
"busy" figure counts from the first video's start to the last one's end (from the manifest), without start-up.
Also prints the load average, since the ratios only hold on cores that are free.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edge_runtime.files import is_video


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_head(port: int, temp: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    ray = str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen([ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
                             "--num-cpus=2", "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={temp}"], env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return head
        time.sleep(0.2)
    stop_head(head)
    raise SystemExit("the Ray head did not start")


def stop_head(head: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        head.wait(3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(head.pid, signal.SIGKILL)
    head.wait(10)


def busy_seconds(manifest: Path) -> tuple[int, float]:
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    start = min(r["finished"] - r["seconds"] for r in rows)
    return sum(r["frames"] for r in rows), max(r["finished"] for r in rows) - start


def run(name: str, commands: list[list[str]], manifest: Path, env: dict[str, str]) -> dict[str, float]:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stderr=subprocess.PIPE, text=True) for c in commands]
    errs = [p.communicate()[1] for p in procs]
    wall = time.perf_counter() - t0
    if any(p.returncode for p in procs):
        raise SystemExit(f"{name} failed:\n" + "\n".join(errs))
    frames, busy = busy_seconds(manifest)
    row = {"frames": frames, "wall_s": wall, "fps": frames / wall, "busy_s": busy, "busy_fps": frames / busy}
    print(f"{name:9s} {frames:6d} frames  wall {wall:6.1f} s  {row['fps']:6.2f} fps   busy {busy:6.1f} s  "
          f"{row['busy_fps']:6.2f} fps   load {os.getloadavg()[0]:.1f}", flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "videos"))
    ap.add_argument("--max-frames", type=int, default=60, help="frames per video (the same in every run)")
    ap.add_argument("-m", "--model", help="ONNX model (default: the bundled denoiser)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="ray_batch_"))
    folder = work / "videos"
    folder.mkdir()
    for v in sorted(Path(args.videos).iterdir()):
        if is_video(v):
            (folder / v.name).symlink_to(v.resolve())
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 characters
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, RAY_AUTH_MODE="disabled",  # loopback only
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    print(f"{len(list(folder.iterdir()))} videos from {args.videos}, {args.max_frames} frames each; "
          f"{os.cpu_count()} cores; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    port = free_port()
    head = start_head(port, temp, env)
    try:
        def denoise(out: str, manifest: Path, *extra: str) -> list[str]:
            return [sys.executable, "-m", "edge_runtime", "denoise", str(folder), "-o", str(work / out),
                    "--max-frames", str(args.max_frames), "--threads", "1", "--manifest", str(manifest),
                    *(["-m", args.model] if args.model else []), *extra]

        rows = {}
        address = f"--ray=127.0.0.1:{port}"
        rows["ray-1"] = run("ray-1", [denoise("r1", work / "r1.jsonl", "--workers", "1", address)],
                            work / "r1.jsonl", env)
        rows["ray-2"] = run("ray-2", [denoise("r2", work / "r2.jsonl", "--workers", "2", address)],
                            work / "r2.jsonl", env)
        rows["shards-2"] = run("shards-2", [denoise("s2", work / "s2.jsonl", "--shard", f"{k}/2") for k in (1, 2)],
                               work / "s2.jsonl", env)
    finally:
        stop_head(head)
        shutil.rmtree(temp, ignore_errors=True)
    for key in ("fps", "busy_fps"):
        r1, r2, s2 = rows["ray-1"][key], rows["ray-2"][key], rows["shards-2"][key]
        print(f"{key:8s}: ray 2/1 workers {r2 / r1:.2f} (target >= 1.7); ray-2 / 2 shard processes "
              f"{r2 / s2:.2f} (target >= 0.90)")
    print(f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
