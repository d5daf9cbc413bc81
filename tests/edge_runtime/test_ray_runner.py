"""`edge-ae denoise ARCHIVE --ray ADDRESS` on a real Ray head on 127.0.0.1 (started and stopped by this module):
every output written with all its frames, a complete manifest, a corrupt video retried once and reported without
stopping the rest, resume after the driver was killed, Ctrl-C keeping what was finished."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from edge_runtime.archive import read_manifest
from tests.edge_runtime.test_archive import GOOD, check_outputs_complete, edge_ae, wait_for_lines


def ray_run(archive: Path, out: Path, model: Path, address: str, manifest: Path, *extra: str) -> list[str]:
    return edge_ae(str(archive), "-o", str(out), "-m", str(model), "--threads", "1", "--workers", "2",
                   "--manifest", str(manifest), *extra, f"--ray={address}")


def test_ray_batch_writes_every_output_and_a_complete_manifest(archive: Path, tmp_path: Path, tiny_onnx: Path,
                                                               ray_head: str) -> None:
    out, manifest = tmp_path / "out", tmp_path / "results.jsonl"
    r = subprocess.run(ray_run(archive, out, tiny_onnx, ray_head, manifest), capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 1, r.stderr  # the corrupt video failed; the rest were done
    assert "on 2 Ray workers" in r.stderr and "4 of 5 videos denoised (230 frames), 1 failed" in r.stderr, r.stderr
    lines = manifest.read_text().splitlines()
    assert len(lines) == 5
    results = {Path(row["output"]).relative_to(out).as_posix(): row for row in map(json.loads, lines)}
    assert sorted(results) == sorted([*GOOD, "2025/corrupt.mp4"])
    bad = results.pop("2025/corrupt.mp4")
    assert bad["status"] == "failed" and bad["attempts"] == 2 and "cannot be decoded" in bad["error"]
    assert {row["status"] for row in results.values()} == {"done"}
    assert {row["attempts"] for row in results.values()} == {1}
    assert len({row["worker"] for row in results.values()}) == 2  # both workers took videos
    assert all(row["frames"] == (77 if name.endswith(("a.mp4", "c.mp4")) else 38) for name, row in results.items())
    check_outputs_complete(archive, out, GOOD)  # frames in = frames out, nothing half-written


def test_ray_resume_after_the_driver_was_killed(archive: Path, tmp_path: Path, tiny_onnx: Path,
                                                ray_head: str) -> None:
    out, first, second = tmp_path / "out", tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    proc = subprocess.Popen(ray_run(archive, out, tiny_onnx, ray_head, first), stderr=subprocess.DEVNULL)
    try:
        wait_for_lines(first, 1, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    done = {Path(x.output) for x in read_manifest(first) if x.status == "done"}
    assert done and len(done) < 4
    for p in done:
        assert p.exists()
    stamps = {p: p.stat().st_mtime_ns for p in done}
    r = subprocess.run(ray_run(archive, out, tiny_onnx, ray_head, second, "--skip-existing"), capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    results = {Path(x.output): x for x in read_manifest(second)}
    assert len(results) == 5
    assert all(results[p].status == "skipped" and p.stat().st_mtime_ns == stamps[p] for p in done)  # none redone
    assert {results[out / n].status for n in GOOD if out / n not in done} == {"done"}
    check_outputs_complete(archive, out, GOOD)


def test_ray_ctrl_c_cancels_and_keeps_finished_outputs(archive: Path, tmp_path: Path, tiny_onnx: Path,
                                                       ray_head: str) -> None:
    out, manifest = tmp_path / "out", tmp_path / "results.jsonl"
    proc = subprocess.Popen(ray_run(archive, out, tiny_onnx, ray_head, manifest), stderr=subprocess.PIPE, text=True)
    try:
        wait_for_lines(manifest, 1, proc)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=60)[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    results = read_manifest(manifest)
    finished = [Path(x.output) for x in results if x.status == "done"]
    cancelled = [Path(x.output) for x in results if x.status == "cancelled"]
    assert finished and cancelled and "cancelled (no output written)" in err
    time.sleep(0.5)
    assert all(p.exists() for p in finished) and not any(p.exists() for p in cancelled)
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporary files left behind"
