"""Archives in one process or many: the per-item result, the manifest (one flushed JSON line per video), a stable
split into shards, and resuming with --skip-existing after the run was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import pytest

from edge_runtime.archive import denoise_item, parse_shard, read_manifest, shard
from edge_runtime.batch import BatchItem, plan_batch
from edge_runtime.denoiser import Denoiser
from tests.helpers import count_frames

GOOD = ["2024/cam1/a.mp4", "2024/cam2/b.mp4", "2025/cam1/c.mp4", "2025/cam2/d.mp4"]


def edge_ae(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_runtime", "denoise", *args]


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen[bytes], timeout: float = 120) -> list[str]:
    """The manifest's lines once it has ``n`` of them, while ``proc`` still runs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= n:
            return lines
        assert proc.poll() is None, "the batch ended before writing its first manifest line"
        time.sleep(0.02)
    pytest.fail(f"no {n} manifest lines within {timeout} s")


def check_outputs_complete(archive: Path, out: Path, names: list[str]) -> None:
    """Every output named is there with as many frames as its input, and no temporary file is left."""
    for name in names:
        src = next((archive / name).parent.glob(Path(name).stem + ".*"))
        assert count_frames(out / name) == count_frames(src), name
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"


def test_shards_are_stable_disjoint_and_complete(archive: Path, tmp_path: Path) -> None:
    items = plan_batch([archive], tmp_path / "out")
    assert len(items) == 5
    for n in (1, 2, 3, 5, 7):
        parts = [shard(items, k, n) for k in range(1, n + 1)]
        flat = [i for p in parts for i in p]
        assert sorted(flat, key=str) == sorted(items, key=str) and len(flat) == len(set(flat)) == len(items)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # balanced by count
        again = plan_batch([archive], tmp_path / "out")  # another process planning the same archive
        assert [shard(again, k, n) for k in range(1, n + 1)] == parts
    assert parse_shard("3/8") == (3, 8)
    for bad in ("0/2", "3/2", "1", "a/b", "1/0"):
        with pytest.raises(ValueError, match="expected K/N"):
            parse_shard(bad)


def test_denoise_item_gives_a_json_result_and_never_raises(archive: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    den = Denoiser(tiny_onnx, device="cpu", threads=1)
    good = denoise_item(BatchItem(archive / "2024/cam2/b.mp4", tmp_path / "b.mp4"), den.denoise, threads=1)
    assert good.status == "done" and good.error is None and good.frames == count_frames(tmp_path / "b.mp4") == 38
    assert good.seconds > 0 and good.fps > 0
    assert json.loads(good.to_json())["frames"] == 38
    bad = denoise_item(BatchItem(archive / "2025/corrupt.mp4", tmp_path / "c.mp4"), den.denoise)
    assert bad.status == "failed" and "cannot be decoded" in (bad.error or "") and not (tmp_path / "c.mp4").exists()


def test_two_shards_share_one_manifest_and_cover_the_archive(archive: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    out, manifest = tmp_path / "out", tmp_path / "results.jsonl"
    common = [str(archive), "-o", str(out), "-m", str(tiny_onnx), "--manifest", str(manifest), "--max-frames", "3",
              "--threads", "1"]
    procs = [subprocess.Popen(edge_ae(*common, "--shard", f"{k}/2"), stderr=subprocess.PIPE, text=True)
             for k in (1, 2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 1], errs  # the corrupt video is in one shard
    assert "shard 1/2: 3 videos" in errs[0] and "shard 2/2: 2 videos" in errs[1]
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert sorted(Path(r["output"]).relative_to(out).as_posix() for r in lines) == sorted([*GOOD, "2025/corrupt.mp4"])
    assert {r["status"] for r in lines if "corrupt" not in r["source"]} == {"done"}
    assert {r["frames"] for r in lines if r["status"] == "done"} == {3}
    assert all(count_frames(out / name) == 3 for name in GOOD)


def test_resume_after_the_batch_was_killed(archive: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    out, first, second = tmp_path / "out", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    run = [str(archive), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1"]
    proc = subprocess.Popen(edge_ae(*run, "--manifest", str(first)), stderr=subprocess.DEVNULL)
    try:
        lines = wait_for_lines(first, 1, proc)  # the first line is on disk while the batch still runs
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    done = [Path(r.output) for r in read_manifest(first) if r.status == "done"]
    assert len(lines) < 5 and done and all(json.loads(line)["status"] == "done" for line in lines)
    # What a killed run leaves: finished outputs, complete; the one in flight only under a hidden temporary name.
    there = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.mp4") if not p.name.startswith("."))
    assert there == sorted(p.relative_to(out).as_posix() for p in done)
    stamps = {p: p.stat().st_mtime_ns for p in done}
    r = subprocess.run(edge_ae(*run, "--skip-existing", "--manifest", str(second)), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr  # the corrupt video
    results = {Path(x.output): x for x in read_manifest(second)}
    assert len(results) == 5
    assert all(results[p].status == "skipped" and p.stat().st_mtime_ns == stamps[p] for p in done)  # none redone
    assert {results[out / n].status for n in GOOD if out / n not in stamps} == {"done"}
    check_outputs_complete(archive, out, GOOD)


def test_batch_options_are_refused_outside_a_batch(archive: Path, tmp_path: Path) -> None:
    r = subprocess.run(edge_ae(str(archive / "2024/cam2/b.mp4"), "-o", str(tmp_path / "x.mp4"), "--shard", "1/2"),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "are for a batch" in r.stderr
    r = subprocess.run(edge_ae(str(archive), "-o", str(tmp_path / "o"), "--shard", "3/2"), capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "expected K/N" in r.stderr
    r = subprocess.run(edge_ae("--ray", str(archive), "-o", str(tmp_path / "o")), capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "put --ray after the inputs" in r.stderr


def test_without_ray_installed_the_message_names_the_extra(archive: Path, tmp_path: Path) -> None:
    code = ("import sys; sys.modules['ray'] = None; from edge_runtime.cli import main; "
            f"sys.argv = ['edge-ae', 'denoise', {str(archive)!r}, '-o', {str(tmp_path / 'o')!r}, '--ray']; main()")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "pip install '.[ray]'" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1


def test_a_video_stopped_by_ctrl_c_is_redone_on_resume(archive: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    out, manifest = tmp_path / "out", tmp_path / "results.jsonl"
    run = [str(archive), "-o", str(out), "-m", str(tiny_onnx), "--threads", "1", "--manifest", str(manifest)]
    proc = subprocess.Popen(edge_ae(*run), stderr=subprocess.DEVNULL)
    try:
        wait_for_lines(manifest, 1, proc)
        deadline = time.monotonic() + 60
        while not [p for p in out.rglob(".*partial*")] and time.monotonic() < deadline:  # the next video started
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    stopped = [Path(r.output) for r in read_manifest(manifest) if r.status == "interrupted"]
    assert len(stopped) == 1 and stopped[0].exists()  # kept, playable, but not finished
    r = subprocess.run(edge_ae(*run, "--skip-existing"), capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "1 videos were interrupted in an earlier run" in r.stderr, r.stderr
    assert {Path(x.output): x.status for x in read_manifest(manifest)}[stopped[0]] == "done"
    check_outputs_complete(archive, out, GOOD)


def _peak_threads(run: Callable[[], object]) -> int:
    """The most OS threads this process had while ``run`` ran."""
    peak, done = [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            status = Path("/proc/self/status").read_text()
            peak[0] = max(peak[0], int(next(ln for ln in status.splitlines() if ln.startswith("Threads:")).split()[1]))
            time.sleep(0.005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        run()
    finally:
        done.set()
        t.join()
    return peak[0]


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="counts threads through /proc (Linux)")
def test_threads_option_caps_decoder_model_and_encoder_threads(archive: Path, tmp_path: Path,
                                                               tiny_onnx: Path) -> None:
    from edge_runtime.archive import open_item

    src = open_item(archive / "2024/cam1/a.mkv", threads=1)
    try:
        assert src._cap is not None and src._cap.get(cv2.CAP_PROP_N_THREADS) == 1  # type: ignore[attr-defined]
    finally:
        src.close()
    item = archive / "2024/cam1/a.mkv"
    pinned = Denoiser(tiny_onnx, device="cpu", threads=1)
    free = Denoiser(tiny_onnx, device="cpu", threads=4)
    one = _peak_threads(lambda: denoise_item(BatchItem(item, tmp_path / "1.mp4"), pinned.denoise, threads=1,
                                             max_frames=20))
    many = _peak_threads(lambda: denoise_item(BatchItem(item, tmp_path / "n.mp4"), free.denoise, max_frames=20))
    assert one < many, (one, many)
