"""The temporal filter as an ONNX graph (models/temporal_filter.onnx), which runs where the model runs so that on
CUDA a stream's frames stay on the GPU between the model and the filter. Here it runs on onnxruntime's CPU
provider through the same code path (``stream.on_device = True``), on real frames and the bundled fp16 frame
models that CUDA gets."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edge_runtime.denoiser import Denoiser
from edge_runtime.model import BUNDLED_CUDA, TEMPORAL_FILTER, Model, default_model_path
from tests.helpers import CLEAN_CLIP, psnr, read_frames


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return [f[160:304, 200:392] for f in read_frames(CLEAN_CLIP, 10)]  # real 144 x 192 crops, a static scene


def noisy(frame: np.ndarray, seed: int, sigma: float = 20.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(frame + rng.normal(0, sigma, frame.shape), 0, 255).round().astype(np.uint8)


def cuda_model(name: str, strength: float = 1.0) -> Denoiser:
    """The bundled model CUDA gets (fp16, uint8 frames in and out), here on the CPU, bound like on CUDA."""
    return Denoiser(str(default_model_path(name, "cuda")), device="cpu", threads=1, bind=True, strength=strength)


def test_the_shipped_graph_is_what_export_makes() -> None:
    onnx = pytest.importorskip("onnx")
    from export.temporal_graph import filter_model

    shipped = onnx.load(str(default_model_path("default").with_name(TEMPORAL_FILTER)))
    assert shipped == filter_model()


@pytest.mark.parametrize(("name", "strength"), [("default", 1.0), ("video", 1.0), ("default", 0.6), ("video", 0.6)])
def test_the_graph_filters_like_the_opencv_filter(name: str, strength: float, frames: list[np.ndarray]) -> None:
    """Also at a strength other than 1, where the blind models' result is mixed with the frame first."""
    den = cuda_model(name, strength)
    host, graph = den.stream(), den.stream()
    graph.on_device = True
    for t, clean in enumerate(frames):
        n = noisy(clean, t)
        a, b = host.denoise(n), graph.denoise(n)
        assert b.shape == n.shape and b.dtype == np.uint8
        if t == 0:
            assert np.array_equal(a, b)  # no past yet: the model's output on both paths
            continue
        # the two differ only in rounding (OpenCV rounds the luma change and its half-size average to uint8)
        assert np.abs(a.astype(float) - b).mean() < 0.1, t
        assert abs(psnr(a, clean) - psnr(b, clean)) < 0.1, t
        assert graph.filter is not None and host.filter is not None
        assert graph.filter.sigma == pytest.approx(host.filter.sigma, abs=0.01)
    last = len(frames) - 1
    gain = psnr(b, frames[last]) - psnr(den.denoise(noisy(frames[last], last)), frames[last])
    if strength == 1.0:
        assert gain > 0.3, gain  # the filter does its work on the device path too
    else:  # the noise left in on purpose looks like change everywhere: the cut rule keeps the past out (both paths)
        assert gain >= -0.01, gain


def test_a_cut_a_reset_and_a_new_size_start_afresh(frames: list[np.ndarray]) -> None:
    den = cuda_model("default")
    stream = den.stream()
    stream.on_device = True
    for t in range(4):
        stream.denoise(noisy(frames[t], t))
    other = noisy(cv2.rotate(read_frames(CLEAN_CLIP, 61)[60][300:444, 400:592], cv2.ROTATE_180), 9)
    assert np.array_equal(stream.denoise(other), den.denoise(other))  # a cut: the model's output as it is
    stream.reset()
    first = noisy(frames[5], 5)
    assert np.array_equal(stream.denoise(first), den.denoise(first))
    small = noisy(frames[6][:64, :96], 6)
    assert np.array_equal(stream.denoise(small), den.denoise(small))  # a new size: the filter starts afresh
    grey = cv2.cvtColor(noisy(frames[7][:64, :96], 7), cv2.COLOR_BGR2GRAY)
    assert stream.denoise(grey).shape == grey.shape  # grey frames take the host path


def test_a_recurrent_stream_keeps_its_state_on_the_device_path(frames: list[np.ndarray]) -> None:
    den = cuda_model("video")
    stream = den.stream()
    stream.on_device = True
    out = [stream.denoise(noisy(c, t)) for t, c in enumerate(frames[:6])]
    assert stream.state is not None and stream.state.shape[2:] == frames[0].shape[:2]
    assert psnr(out[-1], frames[5]) > psnr(den.denoise(noisy(frames[5], 5)), frames[5]) + 0.5


def test_bundled_names_load_fp32_on_a_cpu_and_the_cuda_variants_are_gated() -> None:
    assert Model("video", device="cpu").path.name == "video.onnx"
    assert Model(None, device="cpu").path.name == "default.onnx"
    for name, file in BUNDLED_CUDA.items():
        m = Model(str(default_model_path(name, "cuda")), device="cpu")
        ref = Model(name, device="cpu").card
        assert m.path.name == file and m.card.precision == "fp16" and m.card.input.layout == "NHWC"
        assert m.card.family == ref.family and (m.card.state is None) == (ref.state is None)
        assert m.card.metrics["precision_drop"] <= 0.1  # checked against fp32 when it was made


def test_following_the_camera_on_the_device_path() -> None:
    """A pan through the CUDA variants (here on the CPU provider, bound like on CUDA): the frames go to the
    single-frame model while the camera moves, and the filter stays on the device path throughout."""
    from tests.edge_runtime.test_temporal import pan

    frame = read_frames(CLEAN_CLIP, 1)[0]
    clean = pan(frame, [0] * 4 + [4] * 6 + [0] * 7)
    den = cuda_model("video")
    assert den.follows_camera  # the bundled video model's CUDA variant gets the bundled single-frame one
    moving = den.moving_camera_denoiser()
    assert moving is not None and not moving.recurrent
    den._moving = Denoiser(str(default_model_path("default", "cuda")), device="cpu", threads=1, bind=True)
    stream = den.stream()
    stream.on_device = True
    host = den.stream()
    host.on_device = False
    used = []
    for t, c in enumerate(clean):
        n = noisy(c, t)
        a, b = stream.denoise(n), host.denoise(n)
        used.append(stream.moving)
        assert stream.filter is not None and stream.filter._prev is None  # never the host filter's state
        assert np.abs(a.astype(float) - b).mean() < 0.15, t  # the same frames as the host filter's path
    assert used == [False] * 4 + [True] * 10 + [False] * 3 and stream.switches == 2


@pytest.mark.parametrize("name", ["default", "video"])
def test_the_spread_rule_on_the_device_path(name: str) -> None:
    """Camera noise on a still camera (640 x 480, large enough to tell): the graph takes the spread bound and the
    median cut level from the host and gives back the change's spread; both paths average alike, and cut alike."""
    from tests.edge_runtime.test_temporal import camera_noise

    clean = read_frames(CLEAN_CLIP, 1)[0]
    den = cuda_model(name)
    host, graph = den.stream(), den.stream()
    graph.on_device, host.on_device = True, False
    frames = [camera_noise(clean, t) for t in range(6)] + [camera_noise(np.ascontiguousarray(clean[::-1, ::-1]), 9)]
    for t, f in enumerate(frames):
        a, b = host.denoise(f), graph.denoise(f)
        assert graph.filter is not None and host.filter is not None
        assert graph.filter.still and host.filter.still
        if t >= 1:
            assert graph.filter.spread == pytest.approx(host.filter.spread, rel=0.1, abs=0.05), t
        assert np.abs(a.astype(float) - b).mean() < 0.1, t
    assert psnr(a, den.stream().denoise(frames[-1])) > 45  # the cut: nothing of the past on either path
    assert psnr(b, den.stream().denoise(frames[-1])) > 45
