"""fp16 and int8 variants of an exported fp32 model, each measured against fp32 before it is written.

int8 is onnxruntime static quantization in QDQ format (uint8 activations, per-channel int8
weights, after onnxruntime's model pre-processing), calibrated on noisy frames; graphs with no
convolutions (dense and LSTM families) get dynamic quantization instead, which is the better
choice there (and the worse one for convolutions). fp16 targets the CUDA execution provider
and keeps float32 at the inputs and outputs unless ``frame_io`` asks for uint8 frames.

The quality gate runs the fp32 model and the variant on held-back frames: PSNR on frames with
synthetic Gaussian noise at a few sigmas for denoisers, rank correlation of anomaly scores for
anomaly models. A drop above ``max_drop`` refuses the variant and writes nothing.

Recurrent models (a card with a ``state``) keep their float32 state at the graph boundary in every
variant. They are calibrated on real (frame, state) pairs: the fp32 model run in order over short
noisy clips, each feeding its own next state. The gate runs whole held-back clips in closed loop,
fp32 and variant each through its own ``Denoiser.stream()`` (the model alone, without the runtime's temporal
filter), so an error that the state carries from
frame to frame counts. With every convolution in int8 the bundled video model lost 0.5-0.65 dB on a
held-out clip, so a recurrent model's convolutions are quantized only where they cost little: each is
measured alone through the gate, and the cheapest are combined while their summed drops stay within
``max_drop`` (the combination is then gated as a whole). int8 there is QOperator (QLinearConv): for
the same layers of video.onnx QDQ lost 0.70 dB instead of 0.13 at about the same speed.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from edge_runtime.card import ModelCard, card_from_metadata
from edge_runtime.files import check_writable, is_image, is_video, same_file, write_bytes_atomic
from edge_runtime.frames import to_planes
from edge_runtime.quality import psnr
from export.card_io import set_card
from export.errors import ExportError

PRECISIONS = ("fp32", "fp16", "int8")
GATE_SIGMAS = (15.0, 25.0, 50.0)
CALIBRATION_SIGMAS = (0.0, 10.0, 25.0, 50.0)  # frames are calibrated clean and noisy: a denoiser sees both
DEFAULT_MAX_DROP_DB = 0.1  # PSNR drop allowed for denoisers
DEFAULT_MAX_DROP_RANK = 0.02  # 1 - Spearman correlation of anomaly scores allowed for anomaly models
CROP = 320  # frames are centre-cropped to at most CROP x CROP: enough content, bounded time
CLIPS, CLIP_LENGTH = 9, 8  # a recurrent model's data: runs of consecutive frames (a third held back for the gate)


class PrecisionError(ExportError):
    """A variant cannot be made, or fails the quality gate; nothing is written."""


@dataclass(frozen=True)
class GateResult:
    """How much a variant loses against fp32 on held-back frames."""

    metric: str  # "psnr_db" (denoisers) or "score_rank_corr" (anomaly models)
    drop: float  # fp32 minus variant (dB), or 1 - rank correlation
    max_drop: float
    frames: int
    detail: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.drop <= self.max_drop)


# ---------------------------------------------------------------- frames


def read_frames(data: str | Path, limit: int = 48) -> list[np.ndarray]:
    """uint8 BGR frames from an image folder (recursive), an image, or a video (spread over its length)."""
    p = Path(data)
    if not p.exists():
        msg = f"{p}: no such calibration file or folder"
        raise PrecisionError(msg)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    frames: list[np.ndarray] = []
    for f in files:
        if is_image(f):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                frames.append(img)
        elif is_video(f):
            frames.extend(_video_frames(f, limit))
        elif not p.is_dir():
            msg = f"{f}: not an image or video file"
            raise PrecisionError(msg)
        if len(frames) >= limit:
            break
    if not frames:
        msg = f"{p}: no readable images or video frames"
        raise PrecisionError(msg)
    return frames[:limit]


def _video_frames(path: Path, limit: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or limit
        every = max(1, n // limit)
        out, i = [], 0
        while len(out) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            if i % every == 0:
                out.append(frame)
            i += 1
        return out
    finally:
        cap.release()


def read_clips(data: str | Path, count: int = CLIPS, length: int = CLIP_LENGTH) -> list[list[np.ndarray]]:
    """Runs of ``length`` consecutive uint8 BGR frames for a recurrent model: from each video (runs spread over
    its length), and from the sorted images of a folder taken as the frames of one sequence."""
    p = Path(data)
    if not p.exists():
        msg = f"{p}: no such calibration file or folder"
        raise PrecisionError(msg)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    clips: list[list[np.ndarray]] = []
    images: list[np.ndarray] = []
    for f in files:
        if len(clips) >= count:
            break
        if is_video(f):
            clips.extend(_video_clips(f, count - len(clips), length))
        elif is_image(f):
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is not None:
                images.append(img)
        elif not p.is_dir():
            msg = f"{f}: not an image or video file"
            raise PrecisionError(msg)
    clips.extend(images[i : i + length] for i in range(0, len(images), length))
    if not clips:
        msg = f"{p}: no readable images or video frames"
        raise PrecisionError(msg)
    return clips[:count]


def _video_clips(path: Path, count: int, length: int) -> list[list[np.ndarray]]:
    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or count * length
        starts = {int(s) for s in np.linspace(0, max(n - length, 0), count)}
        out: list[list[np.ndarray]] = []
        run: list[np.ndarray] | None = None
        i = 0
        while len(out) < count:
            ok, frame = cap.read()
            if not ok:
                break
            if i in starts and run is None:
                run = []
            if run is not None:
                run.append(frame)
                if len(run) == length:
                    out.append(run)
                    run = None
            i += 1
        if run:  # the video ended inside a run (a shorter video than its header said)
            out.append(run)
        return out
    finally:
        cap.release()


def validation_frames(card: ModelCard, model_path: Path | None = None, limit: int = 32) -> list[np.ndarray]:
    """The images the model was validated on (never trained on), when the card's provenance finds them."""
    data = card.provenance.get("data") or {}
    names = set(data.get("validation_images") or [])
    if not names:
        return []
    anchors = [Path.cwd(), Path(__file__).resolve().parents[1]]
    if model_path is not None:
        anchors.append(model_path.resolve().parent)
    frames: list[np.ndarray] = []
    for source in data.get("sources") or []:
        for anchor in anchors:
            root = anchor / source
            if root.exists():
                break
        else:
            continue
        videos = {n.split("#")[0] for n in names if "#" in n}
        files = sorted(root.rglob("*")) if root.is_dir() else [root]
        for f in files:
            if f.name in names and is_image(f):
                img = cv2.imread(str(f), cv2.IMREAD_COLOR)
                if img is not None:
                    frames.append(img)
            elif (f.name in videos or str(f) in videos) and is_video(f):
                frames.extend(_video_frames(f, limit))
        if frames:
            break
    return frames[:limit]


def _crop(frame: np.ndarray, multiple: int, size: int = CROP) -> np.ndarray:
    h, w = frame.shape[:2]
    ch, cw = min(h, size) // multiple * multiple, min(w, size) // multiple * multiple
    if ch < multiple or cw < multiple:
        msg = f"a {w}x{h} frame is smaller than the model's spatial multiple {multiple}"
        raise PrecisionError(msg)
    y, x = (h - ch) // 2, (w - cw) // 2
    return frame[y : y + ch, x : x + cw]


def add_noise(frame: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """AWGN on the 0..255 scale, clipped and rounded to uint8 as a camera frame would be."""
    if sigma <= 0:
        return frame
    noisy = frame.astype(np.float32) + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- conversion


class FrameCalibration:
    """Calibration inputs for onnxruntime: each frame, noisy at a rotating sigma, as one model input.

    A recurrent model gets ``clips`` instead: each clip noisy at one rotating sigma, its frames fed in order
    with the state the fp32 model ``model_path`` gave after the frame before (the empty state first), as a
    stream runs.
    """

    def __init__(self, frames: list[np.ndarray], card: ModelCard, input_name: str, seed: int = 0,
                 model_path: Path | None = None, clips: Sequence[list[np.ndarray]] = ()) -> None:
        rng = np.random.default_rng(seed)
        self.extra = {} if card.input.strength is None else {card.input.strength: np.ones(1, np.float32)}
        if card.state is not None:
            if model_path is None:
                msg = "a recurrent model's calibration needs its fp32 file to run the states"
                raise PrecisionError(msg)
            self._feeds: Iterator[dict[str, np.ndarray]] = iter(_state_feeds(clips, card, model_path, rng))
            self.input_name = input_name
            return
        if card.input.height is not None and model_path is not None:  # fixed-size autoencoder: clean frames
            from edge_runtime.autoencoder import Autoencoder

            ae = Autoencoder(model_path, device="cpu")
            inputs = [ae.frames_to_array([f]) for f in frames]
            if card.input.layout == "NTF":
                inputs = [ae.sequences(ae.frames_to_array(frames))[0]]
        else:
            m = card.input.spatial_multiple
            sigmas = CALIBRATION_SIGMAS
            inputs = [to_planes(add_noise(_crop(f, m), sigmas[i % len(sigmas)], rng), card.input)
                      for i, f in enumerate(frames)]
        self._feeds = iter({input_name: x, **self.extra} for x in inputs)
        self.input_name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)

    def rewind(self) -> None:  # part of onnxruntime's reader interface; one pass is all calibration needs
        pass


def _state_feeds(clips: Sequence[list[np.ndarray]], card: ModelCard, model_path: Path,
                 rng: np.random.Generator) -> list[dict[str, np.ndarray]]:
    """(frame, state) feeds of a recurrent model: the fp32 model run in closed loop over each noisy clip."""
    from edge_runtime.model import Model

    assert card.state is not None  # only called for recurrent cards
    model = Model(model_path, device="cpu")
    m, sigmas, feeds = card.input.spatial_multiple, CALIBRATION_SIGMAS, []
    for i, clip in enumerate(clips):
        state = None
        for frame in clip:
            x = to_planes(add_noise(_crop(frame, m), sigmas[i % len(sigmas)], rng), card.input)
            state = model.empty_state(x) if state is None else state
            feeds.append({card.input.name: x, card.state.input: state})
            _, state = model.run_state(x, state)
    return feeds


def _prefers_dynamic(proto: onnx.ModelProto) -> bool:
    ops = {n.op_type for n in proto.graph.node}
    return not ops & {"Conv", "ConvTranspose"} and bool(ops & {"MatMul", "Gemm", "LSTM", "GRU"})


def _edge_layers(proto: onnx.ModelProto) -> list[str]:
    """Layers kept float: the first and last convolutions (they see the raw frame and write the
    output) and transposed convolutions (onnxruntime gains little from them in int8, and they
    carry the upsampled detail). They are thin, so this costs little speed and saves PSNR."""
    convs = [n for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")]
    if len(convs) <= 2:
        return []
    keep = {convs[0].name, convs[-1].name} | {n.name for n in convs if n.op_type == "ConvTranspose"}
    return sorted(keep)


def quantize_int8(fp32: Path, out: Path, frames: list[np.ndarray], card: ModelCard,
                  clips: Sequence[list[np.ndarray]] = (), layers: Sequence[str] | None = None) -> str:
    """Write an int8 model quantized from ``fp32`` to ``out``; returns the method used.

    ``layers``: the convolutions to quantize (default: all but ``_edge_layers``). A recurrent model is
    calibrated on ``clips`` (see FrameCalibration), in QOperator format.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    proto = onnx.load(str(fp32))
    with tempfile.TemporaryDirectory(prefix="edge-ae-quant-") as td:
        pre = Path(td) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        if _prefers_dynamic(proto):
            quantize_dynamic(str(pre), str(out), per_channel=True, weight_type=QuantType.QInt8)
            return "dynamic (int8 weights)"
        if not (clips if card.state is not None else frames):
            msg = "int8 needs calibration frames: give --calibration FOLDER|VIDEO"
            raise PrecisionError(msg)
        reader = FrameCalibration(frames, card, proto.graph.input[0].name, model_path=fp32, clips=clips)
        exclude = _edge_layers(proto)
        if layers is not None:
            exclude = [n.name for n in proto.graph.node if n.op_type in ("Conv", "ConvTranspose")
                       and n.name not in layers]
        fmt = QuantFormat.QOperator if card.state is not None else QuantFormat.QDQ
        # uint8 activations: int8 activations (s8s8) ran slower than fp32 on the CPUs measured.
        # Only convolutions (with their fused ReLUs) run in int8; the skip additions and the final
        # input-minus-noise and clip stay float, so the output is not rounded to 8 bits twice.
        quantize_static(str(pre), str(out), reader, quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax,
                        op_types_to_quantize=["Conv", "ConvTranspose", "Relu", "MatMul", "Gemm"],
                        nodes_to_exclude=exclude)
    name = "QOperator" if fmt == QuantFormat.QOperator else "QDQ"
    return f"static {name} (uint8 activations, per-channel int8 weights)"


_REDUCTIONS = ("ReduceMean", "ReduceSum", "ReduceL1", "ReduceL2", "ReduceSumSquare", "GlobalAveragePool")


def spatial_reductions(proto: onnx.ModelProto) -> list[str]:
    """Nodes that reduce over the image's height or width (NCHW axes 2 and 3; no axes: everything): a mean over
    a frame's millions of pixels."""
    names = []
    for n in proto.graph.node:
        if n.op_type not in _REDUCTIONS:
            continue
        axes = next((list(a.ints) for a in n.attribute if a.name == "axes"), None)
        if n.op_type == "GlobalAveragePool" or axes is None or len(n.input) > 1 or {2, 3, -1, -2} & set(axes):
            names.append(n.name)
    return names


def convert_fp16(proto: onnx.ModelProto) -> onnx.ModelProto:
    """fp16 weights and compute; inputs and outputs stay float32 (a cast at each end). Reductions over the
    frame stay float32: on CUDA an fp16 mean over a 1080p frame went wrong (the recurrent model's cut score:
    the fp16 variant lost 0.9 dB at 1920x1080 on an H200 and nothing at 640x480; the CPU provider computes
    it in float32 either way)."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    return convert_float_to_float16(proto, keep_io_types=True, op_block_list=list(DEFAULT_OP_BLOCK_LIST),
                                    node_block_list=spatial_reductions(proto))


def add_frame_io(proto: onnx.ModelProto, card: ModelCard) -> tuple[onnx.ModelProto, ModelCard]:
    """Wrap an NCHW image model so it takes and returns uint8 N x H x W x 3 BGR frames.

    The conversion to the model's float layout and back then runs wherever the model runs
    (on the GPU with the CUDA provider), so only uint8 frames cross to and from the device.
    """
    spec = card.input
    if spec.layout != "NCHW" or spec.channels != 3:
        msg = f"uint8 frame input needs a 3-channel NCHW image model, not {spec.layout} with {spec.channels} channel(s)"
        raise PrecisionError(msg)
    g = proto.graph
    old_in, old_out = g.input[0].name, g.output[0].name
    elem = g.input[0].type.tensor_type.elem_type
    lo, hi = spec.value_range
    np_t = np.float16 if elem == TensorProto.FLOAT16 else np.float32
    order = [2, 1, 0] if spec.color_order == "RGB" else [0, 1, 2]
    consts = [
        onnx.numpy_helper.from_array(np.array((hi - lo) / 255.0, np_t), "fio_scale"),
        onnx.numpy_helper.from_array(np.array(lo, np_t), "fio_lo"),
        onnx.numpy_helper.from_array(np.array(255.0 / (hi - lo), np_t), "fio_unscale"),
        onnx.numpy_helper.from_array(np.array(0.5, np_t), "fio_half"),
        onnx.numpy_helper.from_array(np.array(0.0, np_t), "fio_min"),
        onnx.numpy_helper.from_array(np.array(255.0, np_t), "fio_max"),
        onnx.numpy_helper.from_array(np.array(order, np.int64), "fio_order"),
    ]
    pre = [
        helper.make_node("Gather", ["frame", "fio_order"], ["fio_rgb"], axis=3),
        helper.make_node("Cast", ["fio_rgb"], ["fio_f"], to=elem),
        helper.make_node("Transpose", ["fio_f"], ["fio_nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Mul", ["fio_nchw", "fio_scale"], ["fio_scaled"]),
        helper.make_node("Add", ["fio_scaled", "fio_lo"], [old_in]),
    ]
    post = [
        helper.make_node("Sub", [old_out, "fio_lo"], ["fio_o0"]),
        helper.make_node("Mul", ["fio_o0", "fio_unscale"], ["fio_o1"]),
        helper.make_node("Add", ["fio_o1", "fio_half"], ["fio_o2"]),  # Cast truncates: +0.5 rounds
        helper.make_node("Clip", ["fio_o2", "fio_min", "fio_max"], ["fio_o3"]),
        helper.make_node("Cast", ["fio_o3"], ["fio_o4"], to=TensorProto.UINT8),
        helper.make_node("Transpose", ["fio_o4"], ["fio_o5"], perm=[0, 2, 3, 1]),
        helper.make_node("Gather", ["fio_o5", "fio_order"], ["frame_out"], axis=3),
    ]
    nodes = pre + list(g.node) + post
    new_in = helper.make_tensor_value_info("frame", TensorProto.UINT8, ["batch", "height", "width", 3])
    new_out = helper.make_tensor_value_info("frame_out", TensorProto.UINT8, ["batch", "height", "width", 3])
    state = card.state
    # The strength input, and a recurrent model's float32 state input and output, stay as they are.
    kept = [i for i in g.input[1:] if i.name in (spec.strength, state.input if state else None)]
    kept_out = [o for o in g.output if state is not None and o.name == state.output]
    graph = helper.make_graph(nodes, g.name, [new_in, *kept], [new_out, *kept_out],
                              initializer=[*g.initializer, *consts],
                              value_info=list(g.value_info))
    wrapped = helper.make_model(graph, opset_imports=list(proto.opset_import), ir_version=proto.ir_version)
    wrapped.producer_name = proto.producer_name
    new_spec = dataclasses.replace(spec, name="frame", layout="NHWC", dtype="uint8", color_order="BGR",
                                   value_range=(0.0, 255.0))
    outputs = {"frame_out": "image", **({state.output: "state"} if state is not None else {})}
    new_card = dataclasses.replace(card, input=new_spec, outputs=outputs)
    return wrapped, new_card


# ---------------------------------------------------------------- the gate


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _runner(session: ort.InferenceSession, card: ModelCard) -> Any:
    """frame (uint8 BGR) -> model output frame (uint8 BGR), through the card's input spec."""
    from edge_runtime.frames import from_planes

    name = session.get_inputs()[0].name
    out = session.get_outputs()[0].name
    extra = {} if card.input.strength is None else {card.input.strength: np.ones(1, np.float32)}
    if card.input.layout == "NHWC":
        return lambda f: session.run([out], {name: f[None], **extra})[0][0]
    return lambda f: from_planes(session.run([out], {name: to_planes(f, card.input), **extra})[0], f, card.input)


def _streams(path: Path, card: ModelCard) -> Any:
    """() -> a fresh frame -> output frame callable per sequence: a recurrent model's ``Denoiser.stream()``
    (closed loop: each frame gets the state the model gave after the one before), else the plain runner."""
    if card.state is None:
        run = _runner(_session(path), card)
        return lambda: run
    from edge_runtime.denoiser import Denoiser

    den = Denoiser(path, device="cpu", tile=None)
    return lambda: den.stream(temporal=False).denoise  # the model itself: the runtime's temporal filter is apart


def gate(reference: Path, ref_card: ModelCard, variant: Path, card: ModelCard,
         frames: Sequence[np.ndarray | list[np.ndarray]], max_drop: float | None = None, seed: int = 1) -> GateResult:
    """Measure the model file ``variant`` against ``reference`` on ``frames`` (held back from calibration).

    An item of ``frames`` that is a list is a clip: its frames run in order through one stream of each model.
    """
    if not frames:
        msg = "the quality gate needs held-back frames: give --calibration FOLDER|VIDEO"
        raise PrecisionError(msg)
    if card.task not in ("denoise", "both"):
        return _gate_anomaly(reference, variant, [f for f in frames if isinstance(f, np.ndarray)], max_drop, seed)
    m = card.input.spatial_multiple
    clips = [[_crop(f, m) for f in (c if isinstance(c, list) else [c])] for c in frames]
    ref, var = _streams(reference, ref_card), _streams(variant, card)
    rng = np.random.default_rng(seed)
    detail: dict[str, Any] = {"sigmas": list(GATE_SIGMAS), "fp32_psnr": [], "variant_psnr": []}
    if card.state is not None:
        detail["clips"] = len(clips)
    for sigma in GATE_SIGMAS:
        a, b = [], []
        for clip in clips:
            ref_step, var_step = ref(), var()
            for clean in clip:
                noisy = add_noise(clean, sigma, rng)
                a.append(psnr(ref_step(noisy), clean))
                b.append(psnr(var_step(noisy), clean))
        detail["fp32_psnr"].append(round(float(np.mean(a)), 4))
        detail["variant_psnr"].append(round(float(np.mean(b)), 4))
    drop = max(r - v for r, v in zip(detail["fp32_psnr"], detail["variant_psnr"], strict=True))
    limit = DEFAULT_MAX_DROP_DB if max_drop is None else max_drop
    return GateResult("psnr_db", round(float(drop), 4), limit, sum(len(c) for c in clips), detail)


def _gate_anomaly(reference: Path, variant: Path, frames: list[np.ndarray], max_drop: float | None,
                  seed: int) -> GateResult:
    """Spearman correlation of per-sample reconstruction errors (the anomaly score's basis), through the
    runtime's Autoencoder, on held-back frames and noisy copies of them (so scores spread)."""
    from edge_runtime.autoencoder import Autoencoder

    rng = np.random.default_rng(seed)
    probes = [add_noise(f, s, rng) for f in frames for s in (0.0, 15.0, 40.0)]

    def scores(path: Path) -> np.ndarray:
        ae = Autoencoder(path, device="cpu")
        x = ae.frames_to_array(probes)
        if ae.layout == "NTF":
            x = x[:, None]  # each probe a one-step sequence: scores stay per probe
        return ae.errors(x)

    a, b = scores(reference), scores(variant)
    ra, rb = a.argsort().argsort(), b.argsort().argsort()
    rho = float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 1 and ra.std() > 0 and rb.std() > 0 else 1.0
    limit = DEFAULT_MAX_DROP_RANK if max_drop is None else max_drop
    return GateResult("score_rank_corr", round(1.0 - rho, 4), limit, len(probes), {"spearman": round(rho, 4)})


def _int8_layers(fp32: Path, card: ModelCard, clips: Sequence[list[np.ndarray]],
                 check: Sequence[np.ndarray | list[np.ndarray]], max_drop: float | None, work: Path, out: Path,
                 log: Any) -> dict[str, Any]:
    """The convolutions of a recurrent model to run in int8: each (but ``_edge_layers``) quantized alone and
    gated, then the cheapest taken while their summed drops stay within ``max_drop``."""
    proto = onnx.load(str(fp32))
    edge = set(_edge_layers(proto))
    candidates = [n.name for n in proto.graph.node if n.op_type == "Conv" and n.name not in edge]
    limit = DEFAULT_MAX_DROP_DB if max_drop is None else max_drop
    staged, int8_card = work / "layer.onnx", dataclasses.replace(card, precision="int8")
    drops: dict[str, float] = {}
    for name in candidates:
        quantize_int8(fp32, staged, [], card, clips, [name])
        one = onnx.load(str(staged))
        set_card(one, int8_card)
        onnx.save_model(one, str(staged))
        drops[name] = gate(fp32, card, staged, int8_card, check, max_drop).drop
        log(f"int8 {name} alone: loses {drops[name]:.3f} dB")
    chosen: list[str] = []
    spent = 0.0
    for name in sorted(candidates, key=lambda n: drops[n]):
        if spent + max(drops[name], 0.0) <= limit:
            chosen.append(name)
            spent += max(drops[name], 0.0)
    if not chosen:
        msg = (f"{fp32}: every convolution of this recurrent model loses more than --max-drop {limit:g} dB in int8 "
               f"on its own (least: {min(drops.values(), default=float('nan')):.3f}); {out} not written")
        raise PrecisionError(msg)
    log(f"int8 layers: {', '.join(chosen)} (the others stay float)")
    return {"int8_layers": [n for n in candidates if n in chosen], "layer_drops": drops}


# ---------------------------------------------------------------- the whole job


def make_variant(fp32: str | Path, out: str | Path, precision: str, calibration: str | Path | None = None,
                 max_drop: float | None = None, frame_io: bool = False,
                 log: Any = lambda s: None, overwrite: bool = True) -> ModelCard:
    """Write the ``precision`` variant of the fp32 model ``fp32`` to ``out`` if it passes the gate.

    Calibration frames come from ``calibration`` (image folder, image or video) or, by default,
    from the model's validation images named in its card; the gate uses the model's validation
    images when found, else frames of ``calibration`` held back from calibrating. A failing
    gate raises PrecisionError; ``out`` is then untouched and no temporary file remains. Unless ``overwrite``,
    an existing ``out`` is refused.
    """
    fp32, out = Path(fp32), Path(out)
    if precision not in PRECISIONS:
        msg = f"precision {precision!r} is not one of {', '.join(PRECISIONS)}"
        raise PrecisionError(msg)
    check_writable(out)
    if same_file(out, fp32):
        msg = f"{out}: the variant would overwrite its fp32 source"
        raise PrecisionError(msg)
    proto = onnx.load(str(fp32))
    ref_session = _session(fp32)
    card = card_from_metadata(ref_session.get_modelmeta().custom_metadata_map, str(fp32))
    if card.precision != "fp32":
        msg = f"{fp32}: the source model must be fp32, not {card.precision}"
        raise PrecisionError(msg)
    recurrent = card.state is not None

    calib: list[np.ndarray] = []
    clips: list[list[np.ndarray]] = []
    check: Sequence[np.ndarray | list[np.ndarray]]
    if recurrent:  # clips of consecutive frames; every third held back for the gate
        if calibration is None:
            msg = (f"{fp32}: a recurrent model is calibrated and gated on clips of consecutive frames: "
                   f"give --calibration VIDEO|FOLDER")
            raise PrecisionError(msg)
        runs = read_clips(calibration)
        clips, check = [c for i, c in enumerate(runs) if i % 3], runs[::3]
        log(f"gate: {len(check)} held-back clips ({sum(len(c) for c in check)} frames, closed loop); calibration: "
            f"{len(clips) if precision == 'int8' else 0} clips")
    else:
        held = validation_frames(card, fp32)
        given = read_frames(calibration) if calibration is not None else []
        if given and held:
            calib, check = given, held
        elif given:  # hold back every third frame of the user's data for the gate
            calib = [f for i, f in enumerate(given) if i % 3]
            check = given[::3]
        else:
            calib, check = held[1::2], held[::2]
        check = check[:8]
        log(f"gate: {len(check)} held-back frames; calibration: {len(calib) if precision == 'int8' else 0} frames")

    with tempfile.TemporaryDirectory(prefix="edge-ae-precision-") as td:
        work = Path(td) / "variant.onnx"
        method = "none"
        layers: dict[str, Any] = {}
        if precision == "int8":
            if recurrent:
                layers = _int8_layers(fp32, card, clips, check, max_drop, Path(td), out, log)
            method = quantize_int8(fp32, work, calib, card, clips, layers.get("int8_layers"))
            variant = onnx.load(str(work))
        elif precision == "fp16":
            variant, method = convert_fp16(proto), "float16 weights and compute, float32 inputs/outputs"
        else:
            variant = proto
        new_card = dataclasses.replace(card, precision=precision)
        if frame_io:
            variant, new_card = add_frame_io(variant, new_card)
        staged = Path(td) / "staged.onnx"
        set_card(variant, new_card)
        onnx.save_model(variant, str(staged))
        result = gate(fp32, card, staged, new_card, check, max_drop)
        unit = "dB PSNR" if result.metric == "psnr_db" else "(1 - rank correlation)"
        if not result.passed:
            msg = (f"{fp32}: the {precision} variant loses {result.drop:.3f} {unit} against fp32 on "
                   f"{result.frames} held-back frames, more than --max-drop {result.max_drop:g}; {out} not written "
                   f"(calibration data may not resemble the frames the model sees)")
            raise PrecisionError(msg)
        metrics = {**card.metrics, "precision_drop": result.drop, "precision_gate": {
            "metric": result.metric, "max_drop": result.max_drop, "frames": result.frames, "method": method,
            **layers, **result.detail}}
        new_card = dataclasses.replace(new_card, metrics=metrics)
        set_card(variant, new_card)
        write_bytes_atomic(out, variant.SerializeToString(), overwrite)
    return new_card
