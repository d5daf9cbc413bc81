"""`edge-ae denoise` on many videos: mirrored outputs, one failure reported without stopping the rest, a summary."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_runtime.batch import is_video_folder, plan_batch
from edge_runtime.errors import OutputError, SourceError
from tests.helpers import CLEAN_CLIP, count_frames


def test_plan_mirrors_folders_and_refuses_clashes(library: Path, tmp_path: Path) -> None:
    assert is_video_folder(library)
    items = plan_batch([library], tmp_path / "out")
    assert [(i.source.relative_to(library).as_posix(), i.output.relative_to(tmp_path / "out").as_posix())
            for i in items] == [("day1/a.mkv", "day1/a.mp4"), ("day2/broken.mp4", "day2/broken.mp4"),
                                ("day2/cam/b.mkv", "day2/cam/b.mp4")]
    (tmp_path / "other").mkdir()
    shutil.copy(CLEAN_CLIP, tmp_path / "other" / "a.mkv")
    with pytest.raises(OutputError, match="would both be written to"):
        plan_batch([library / "day1" / "a.mkv", tmp_path / "other" / "a.mkv"], tmp_path / "flat")
    with pytest.raises(SourceError, match="missing.mp4: no such file"):
        plan_batch([tmp_path / "missing.mp4"], tmp_path / "out")
    # Outputs inside the input folder are not picked up again on a rerun.
    (library / "out" / "day1").mkdir(parents=True)
    shutil.copy(CLEAN_CLIP, library / "out" / "day1" / "a.mkv")
    assert len(plan_batch([library], library / "out")) == 3


def test_batch_run_reports_the_failure_and_finishes_the_rest(library: Path, tmp_path: Path, tiny_onnx: Path) -> None:
    out = tmp_path / "clean"
    extra = tmp_path / "single.mkv"
    shutil.copy(CLEAN_CLIP, extra)
    r = subprocess.run([sys.executable, "-m", "edge_runtime", "denoise", str(library), str(extra), "-o", str(out),
                        "-m", str(tiny_onnx), "--max-frames", "4"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 1, r.stderr
    assert "[2/4]" in r.stderr and "broken.mp4: FAILED:" in r.stderr and "cannot be decoded" in r.stderr
    assert "3 of 4 videos denoised (12 frames), 1 failed" in r.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["day1/a.mp4", "day2/cam/b.mp4", "single.mp4"]
    assert all(count_frames(out / w) == 4 for w in written)
