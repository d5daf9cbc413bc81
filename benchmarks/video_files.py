"""Written videos against the frames in memory: quality, size and speed of edge-ae's video files.

    python -m benchmarks.video_files [--frames 60] [--crf N]

Inputs: the bundled noisy sample (its clean source is the Intel clip it was made from) and two shared videos
made noisy the same way (tests/data/make_sample_clip.py: per-pixel variance 0.01*x + 0.04^2, libx264 CRF 22,
the input's own pixel format, its audio copied), their decoded frames being the clean reference.

For each: PSNR against the clean frames of the denoised frames in memory and of the written file (decoded by
OpenCV as edge-ae reads it, and by an exact BT.601 conversion of the decoded YUV planes, as a colour-accurate
player shows it), the file's size against the input's, and file-to-file throughput against model-only
throughput (frames decoded beforehand) and against the same pipeline writing nothing, in the same run (three
passes each, alternated; the best of each). A lossless file of the same
frames, read by OpenCV, shows what reading through OpenCV alone costs. OpenCV's mp4v writer is shown for
comparison. Last, the encoder itself: PyAV's installed size, import time and libx264 speed.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import av
import cv2
import numpy as np

from edge_runtime.denoiser import Denoiser
from edge_runtime.media import DEFAULT_CRF, PRESET, Encoding, probe
from edge_runtime.model import sample_clip
from edge_runtime.pipeline import run_pipeline
from edge_runtime.sources import open_source

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("EDGE_AE_SHARED", ROOT.parent / "shared" / "data"))
CLEAN_CLIP = ROOT / "tests" / "data" / "intel_asl_again.mkv"
SHARED_VIDEOS = ("imageio_cockatoo.mp4", "imageio_realshort.mp4")  # 4:4:4 HD with mp3; 4:2:0 with AAC
ROUNDS = 3


def read(path: Path, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while limit is None or len(frames) < limit:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def psnr(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    assert len(a) == len(b), (len(a), len(b))
    mse = [max(float(np.mean((x.astype(np.float64) - y) ** 2)), 1e-12) for x, y in zip(a, b, strict=True)]
    return float(np.mean([10 * np.log10(255.0**2 / m) for m in mse]))


def exact_decode(path: Path) -> list[np.ndarray]:
    """Decode with PyAV to YUV planes and convert with the exact BT.601 equations (nearest chroma), in floats."""
    out = []
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            planes = fr.to_ndarray()
            full = fr.color_range == 2 or fr.format.name.startswith("yuvj")
            h, w = fr.height, fr.width
            if planes.ndim == 3:  # (3, h, w): 4:4:4
                y, u, v = (p.astype(np.float64) for p in planes)
            else:  # (h * 3 / 2, w): 4:2:0
                y = planes[:h].astype(np.float64)
                u = planes[h : h + h // 4].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1).astype(np.float64)
                v = planes[h + h // 4 :].reshape(h // 2, w // 2).repeat(2, 0).repeat(2, 1).astype(np.float64)
            if full:
                u, v = u - 128, v - 128
            else:
                y, u, v = (y - 16) * 255 / 219, (u - 128) * 255 / 224, (v - 128) * 255 / 224
            r, g, b = y + 1.402 * v, y - 0.344136 * u - 0.714136 * v, y + 1.772 * u
            out.append(np.clip(np.stack([b, g, r], -1).round(), 0, 255).astype(np.uint8))
    return out


def make_noisy(src: Path, dst: Path, frames: int) -> list[np.ndarray]:
    """The first ``frames`` frames of ``src`` with low-light camera noise, encoded like the bundled sample,
    keeping ``src``'s pixel format, frame rate and audio; returns the clean (decoded) frames."""
    clean = read(src, frames)
    info = probe(src)
    assert info is not None and info.frame_rate is not None
    rng = np.random.default_rng(7)
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        s = out.add_stream("libx264", rate=info.frame_rate, options={"crf": "22", "preset": "slow"})
        s.height, s.width = clean[0].shape[:2]
        s.pix_fmt = "yuv444p" if "444" in info.pix_fmt else "yuv420p"
        audio = [(a, out.add_stream_from_template(a)) for a in inp.streams.audio]
        for i, f in enumerate(clean):
            x = f.astype(np.float32) / 255
            noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(0.01 * x + 0.04**2)
            vf = av.VideoFrame.from_ndarray((np.clip(noisy, 0, 1) * 255 + 0.5).astype(np.uint8), format="bgr24")
            vf = vf.reformat(format=s.pix_fmt, dst_colorspace=5, dst_color_range=1)
            vf.pts = i
            for p in s.encode(vf):
                out.mux(p)
        for p in s.encode(None):
            out.mux(p)
        end = len(clean) / float(info.frame_rate)
        if audio:
            for packet in inp.demux(*[a for a, _ in audio]):
                if packet.pts is None or float(packet.pts * packet.time_base) >= end:
                    continue
                packet.stream = dict(audio)[packet.stream]
                out.mux(packet)
    return clean


def sample_input() -> tuple[Path, list[np.ndarray]]:
    """The bundled sample and its clean source (every second frame of the first 76, 480x360)."""
    clean = [cv2.resize(f, (480, 360), interpolation=cv2.INTER_AREA) for f in read(CLEAN_CLIP, 76)[0:76:2]]
    return sample_clip(), clean


def measure(name: str, src: Path, clean: list[np.ndarray], den: Denoiser, work: Path, encoding: Encoding) -> dict:
    noisy = read(src)
    n = min(len(noisy), len(clean))
    noisy, clean = noisy[:n], clean[:n]
    model_fps, decode_fps, file_fps, model_cpu, file_cpu, mem = 0.0, 0.0, 0.0, 1e9, 1e9, []
    out = work / f"{Path(name).stem}_denoised.mp4"
    for _ in range(ROUNDS):  # alternated, best of each: other work on the machine slows one pass, not the figure
        t, c = time.perf_counter(), time.process_time()
        mem = [den.denoise(f) for f in noisy]
        model_fps = max(model_fps, n / (time.perf_counter() - t))
        model_cpu = min(model_cpu, 1000 * (time.process_time() - c) / n)
        source = open_source(src)  # the same pipeline writing nothing: what encoding adds is the difference
        t = time.perf_counter()
        run_pipeline(source, den.denoise, None, handle_signals=False)
        decode_fps = max(decode_fps, n / (time.perf_counter() - t))
        source.close()
        source = open_source(src)
        t, c = time.perf_counter(), time.process_time()
        run_pipeline(source, den.denoise, out, handle_signals=False, encoding=encoding, overwrite=True)
        file_fps = max(file_fps, n / (time.perf_counter() - t))
        file_cpu = min(file_cpu, 1000 * (time.process_time() - c) / n)
        source.close()
    written_cv, written_exact = read(out), exact_decode(out)
    # The floor of reading through OpenCV: the same frames written losslessly (CRF 0), read back by OpenCV.
    floor_path = work / "lossless.mp4"
    source = open_source(src)
    run_pipeline(source, den.denoise, floor_path, handle_signals=False, encoding=Encoding(crf=0))
    source.close()
    floor = psnr(read(floor_path), clean)
    mp4v = work / "mp4v.mp4"
    w = cv2.VideoWriter(str(mp4v), cv2.VideoWriter.fourcc(*"mp4v"), 25.0, (mem[0].shape[1], mem[0].shape[0]))
    for f in mem:
        w.write(f)
    w.release()
    info, src_info = probe(out), probe(src)
    assert info is not None and src_info is not None
    return {
        "video": name, "frames": n, "size": f"{mem[0].shape[1]}x{mem[0].shape[0]}",
        "input": f"{src_info.codec} {src_info.pix_fmt}{' +audio' if src_info.audio else ''}",
        "written": f"{info.codec} {info.pix_fmt}{' +audio' if info.audio else ''}",
        "noisy": psnr(noisy, clean), "memory": psnr(mem, clean), "file_cv": psnr(written_cv, clean),
        "file_exact": psnr(written_exact, clean), "file_vs_memory": psnr(written_exact, mem), "floor": floor,
        "mp4v_cv": psnr(read(mp4v), clean), "mp4v_exact": psnr(exact_decode(mp4v), clean),
        "input_kb": src.stat().st_size / 1000, "file_kb": out.stat().st_size / 1000,
        "mp4v_kb": mp4v.stat().st_size / 1000, "model_fps": model_fps, "file_fps": file_fps, "decode_fps": decode_fps,
        "model_cpu": model_cpu, "file_cpu": file_cpu,
    }


def encoder_figures(work: Path, preset: str) -> list[str]:
    dist = metadata.distribution("av")
    size = sum((Path(dist.locate_file(f)).stat().st_size for f in dist.files or []
                if Path(dist.locate_file(f)).exists()), 0)
    t = []
    for _ in range(3):
        r = subprocess.run([sys.executable, "-c", "import time; t = time.perf_counter(); import av; "
                            "print(time.perf_counter() - t)"], capture_output=True, text=True, check=True)
        t.append(float(r.stdout))
    frames = read(CLEAN_CLIP)
    lines = [f"PyAV {av.__version__}: installed {size / 1e6:.0f} MB (av + av.libs), import {1000 * min(t):.0f} ms"]
    for pix in ("yuv420p", "yuv444p"):
        path = work / f"speed_{pix}.mp4"
        with av.open(str(path), "w") as c:
            s = c.add_stream("libx264", rate=30, options={"crf": str(DEFAULT_CRF["h264"]), "preset": preset})
            s.height, s.width = frames[0].shape[:2]
            s.pix_fmt = pix
            start = time.perf_counter()
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format=pix)
                vf.pts = i
                for p in s.encode(vf):
                    c.mux(p)
            for p in s.encode(None):
                c.mux(p)
            fps = len(frames) / (time.perf_counter() - start)
        lines.append(f"libx264 CRF {DEFAULT_CRF['h264']} {preset}, {pix}, 640x480 clean clip: {fps:.0f} fps")
    try:
        import imageio_ffmpeg

        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
        lines.append(f"for comparison, imageio-ffmpeg's ffmpeg binary: {exe.stat().st_size / 1e6:.0f} MB")
    except (ImportError, RuntimeError, OSError):
        pass
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.video_files", description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=40, help="frames of each shared video (the sample: all 38)")
    ap.add_argument("--crf", type=int, help=f"constant quality to write at (default: {DEFAULT_CRF['h264']})")
    ap.add_argument("--preset", help=f"x264 speed preset (default: {PRESET})")
    args = ap.parse_args(argv)
    den = Denoiser()
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        src, clean = sample_input()
        encoding = Encoding(crf=args.crf, preset=args.preset)
        rows.append(measure("sample.mp4 (bundled)", src, clean, den, work, encoding))
        for name in SHARED_VIDEOS:
            original = SHARED / "videos" / name
            if not original.exists():
                print(f"skipped {name}: {original} is not here", file=sys.stderr)
                continue
            noisy = work / f"noisy_{name}"
            clean = make_noisy(original, noisy, args.frames)
            rows.append(measure(f"{name} + noise", noisy, clean, den, work, encoding))
        enc = encoder_figures(work, args.preset or PRESET)
    head = ("| video | frames | input -> written | noisy dB | in memory dB | file dB (OpenCV / exact) | loss dB "
            "(OpenCV / exact) | lossless file, OpenCV dB | file vs memory dB | mp4v dB (OpenCV / exact) "
            "| KB input / file / mp4v | fps model / decode+model / file-to-file "
            "| file-to-file vs model (vs decode+model) | CPU ms/frame model / file-to-file |")
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        print(f"| {r['video']} | {r['frames']} ({r['size']}) | {r['input']} -> {r['written']} | {r['noisy']:.2f} | "
              f"{r['memory']:.2f} | {r['file_cv']:.2f} / {r['file_exact']:.2f} | "
              f"{r['memory'] - r['file_cv']:.2f} / {r['memory'] - r['file_exact']:.2f} | {r['floor']:.2f} | "
              f"{r['file_vs_memory']:.2f} | "
              f"{r['mp4v_cv']:.2f} / {r['mp4v_exact']:.2f} | {r['input_kb']:.0f} / {r['file_kb']:.0f} / "
              f"{r['mp4v_kb']:.0f} | {r['model_fps']:.1f} / {r['decode_fps']:.1f} / {r['file_fps']:.1f} | "
              f"{100 * r['file_fps'] / r['model_fps']:.0f} % ({100 * r['file_fps'] / r['decode_fps']:.0f} %) | "
              f"{r['model_cpu']:.0f} / {r['file_cpu']:.0f} |")
    print()
    for line in enc:
        print(line)
    crf = args.crf if args.crf is not None else DEFAULT_CRF["h264"]
    print(f"written with CRF {crf}, preset {args.preset or PRESET}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load:.1f} at the start and {os.getloadavg()[0]:.1f} at the end "
          f"(other work on the machine), {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
