"""The temporal filter (``edge_runtime.temporal``) as an ONNX graph, so that on CUDA a stream's frames never
leave the GPU between the model and the filter.

The runtime ships the graph as ``edge_runtime/models/temporal_filter.onnx`` (it does not depend on ``onnx``);
this module writes it: ``python -m export.temporal_graph [PATH]``. A test checks that the shipped file is
what this module makes.

Inputs, NHWC like a ``--frame-io`` model's (one frame, BGR, any size):
    frame   uint8 (1, H, W, 3)  the noisy frame the model was given
    result  uint8 (1, H, W, 3)  the model's output for it
    prev    float32 (1, H, W, 3) the filter's previous output (its state)
    params  float32 (7,)        max_weight, k, keep (0: the first frame of a stream, nothing of ``prev`` is used),
                                blend (the model's result mixed with the frame first, rounded to whole levels:
                                frame + blend (result - frame); 1: the result as it is), the spread of the change
                                (``TemporalFilter.spread`` where the camera is still, else 0) and its two gains:
                                where the spread exceeds the threshold from the noise estimate, the threshold is
                                the first gain times the spread, and a median change above the second gain times
                                the spread is a cut
    grid    int64 (2,)          the row and column step of the noise estimate's sample grid
Outputs:
    output  uint8 (1, H, W, 3)  the filtered frame
    state   float32 (1, H, W, 3) the next ``prev``
    sigma   float32 (1,)        the frame's noise estimate (uint8 levels)
    spread  float32 (1,)        the value at sorted position n // 4 of the blurred change at half size on a grid of
                                step (s + 1) // 2 (n samples): the host's ``TemporalFilter.spread`` comes from it

Same steps as the OpenCV version: the luma-weighted change |result - round(prev)|, averaged to half size,
blurred by a 9-tap Gaussian (sigma ``blur``/2 = 1 half-size pixel, mirrored borders), resized back
(bilinear, pixel centres as OpenCV); sigma from the median absolute deviation of the green residual on the
grid; the cut rule; the convex blend in float32. The two differ only in rounding: OpenCV rounds the luma
change and the half-size average to uint8 (and its area average of an odd size weighs edge pixels
differently); the benchmark compares them (``benchmarks.gpu_stream``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime 1.14 and later
DEFAULT_PATH = Path(__file__).resolve().parents[1] / "edge_runtime" / "models" / "temporal_filter.onnx"
BLUR = 2.0  # edge_runtime.temporal.TemporalFilter's default: sigma 2 px at full size, 1 px at half size
CUT_SHARE = 0.5
FLOOR = 0.5


def _gauss(sigma: float) -> np.ndarray:
    """OpenCV's float Gaussian kernel: size round(8 sigma + 1) made odd, normalised."""
    size = round(sigma * 8 + 1) | 1
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    k = np.exp(-(x**2) / (2 * sigma**2))
    return (k / k.sum()).astype(np.float32)


def filter_model() -> onnx.ModelProto:
    """The filter graph (see the module's docstring)."""
    kern = _gauss(BLUR / 2)
    r = len(kern) // 2
    consts = {
        "luma": np.array([[0.114], [0.587], [0.299]], np.float32),  # BGR -> grey weights, as cv2.COLOR_BGR2GRAY
        "kern_h": kern.reshape(1, 1, 1, -1),
        "kern_v": kern.reshape(1, 1, -1, 1),
        "pads": np.array([0, 0, r, r, 0, 0, r, r], np.int64),
        "zero_f": np.array(0.0, np.float32),
        "one_f": np.array(1.0, np.float32),
        "top_f": np.array(255.0, np.float32),
        "floor": np.array(FLOOR, np.float32),
        "cut_share": np.array(CUT_SHARE, np.float32),
        "mad_scale": np.array(1.4826, np.float32),
        "half_f": np.array(0.5, np.float32),
        "i0": np.array([0], np.int64),
        "i1": np.array([1], np.int64),
        "i2": np.array([2], np.int64),
        "i3": np.array([3], np.int64),
        "g_starts": np.array([0, 0, 1], np.int64),
        "g_ends": np.array([2**62, 2**62, 2], np.int64),
        "g_axes": np.array([1, 2, 3], np.int64),
        "flat": np.array([-1], np.int64),
        "scalar": np.array([], np.int64),
        "one_i": np.array([1], np.int64),
        "two_i": np.array([2], np.int64),
        "four_i": np.array([4], np.int64),
        "i4": np.array([4], np.int64),
        "i5": np.array([5], np.int64),
        "i6": np.array([6], np.int64),
        "huge": np.array(3e38, np.float32),
        "m_starts": np.array([0, 0], np.int64),
        "m_ends": np.array([2**62, 2**62], np.int64),
        "m_axes": np.array([2, 3], np.int64),
        "roi": np.array([], np.float32),
        "scales": np.array([], np.float32),
    }
    init = [numpy_helper.from_array(v, k) for k, v in consts.items()]
    n = helper.make_node
    nodes = [
        # the parameters
        n("Gather", ["params", "i0"], ["max_w"], axis=0),
        n("Gather", ["params", "i1"], ["k"], axis=0),
        n("Gather", ["params", "i2"], ["keep"], axis=0),
        n("Cast", ["frame"], ["ff"], to=TensorProto.FLOAT),
        n("Gather", ["params", "i3"], ["blend"], axis=0),
        n("Cast", ["result"], ["raw"], to=TensorProto.FLOAT),
        # a blind model's result at a strength other than 1: mixed with the frame, rounded like the host's
        n("Sub", ["raw", "ff"], ["towards"]),
        n("Mul", ["towards", "blend"], ["part"]),
        n("Add", ["ff", "part"], ["mixed"]),
        n("Add", ["mixed", "half_f"], ["mixed_h"]),
        n("Floor", ["mixed_h"], ["mixed_r"]),
        n("Clip", ["mixed_r", "zero_f", "top_f"], ["rf"]),
        # the change from the last output, luma-weighted and rounded like OpenCV's uint8 grey
        n("Round", ["prev"], ["last"]),
        n("Sub", ["rf", "last"], ["d3"]),
        n("Abs", ["d3"], ["ad3"]),
        n("MatMul", ["ad3", "luma"], ["dl"]),  # (1, H, W, 1)
        n("Round", ["dl"], ["dlr"]),
        n("Transpose", ["dlr"], ["d"], perm=[0, 3, 1, 2]),  # (1, 1, H, W)
        n("Shape", ["d"], ["dshape"]),
        # half size, blurred, back to full size
        n("AveragePool", ["d"], ["half"], kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1),
        n("Pad", ["half", "pads"], ["halfp"], mode="reflect"),
        n("Conv", ["halfp", "kern_h"], ["bh"]),
        n("Conv", ["bh", "kern_v"], ["bhv"]),
        n("Resize", ["bhv", "roi", "scales", "dshape"], ["motion"], mode="linear",
          coordinate_transformation_mode="half_pixel"),
        # the noise: median absolute deviation of the green residual on the grid
        n("Concat", ["grid", "one_i"], ["g_steps"], axis=0),
        n("Slice", ["ff", "g_starts", "g_ends", "g_axes", "g_steps"], ["fg"]),
        n("Slice", ["rf", "g_starts", "g_ends", "g_axes", "g_steps"], ["rg"]),
        n("Sub", ["fg", "rg"], ["res2"]),
        n("Reshape", ["res2", "flat"], ["res"]),
        n("Shape", ["res"], ["count"]),
        n("TopK", ["res", "count"], ["sorted_r", "_ir"], largest=0, sorted=1),
        n("Sub", ["count", "one_i"], ["cm1"]),
        n("Div", ["cm1", "two_i"], ["lo_i"]),  # (n - 1) // 2
        n("Div", ["count", "two_i"], ["hi_i"]),  # n // 2
        n("Gather", ["sorted_r", "lo_i"], ["r_lo"], axis=0),
        n("Gather", ["sorted_r", "hi_i"], ["r_hi"], axis=0),
        n("Add", ["r_lo", "r_hi"], ["r_sum"]),
        n("Mul", ["r_sum", "half_f"], ["med"]),
        n("Sub", ["res", "med"], ["dev"]),
        n("Abs", ["dev"], ["adev"]),
        n("TopK", ["adev", "count"], ["sorted_a", "_ia"], largest=0, sorted=1),
        n("Gather", ["sorted_a", "lo_i"], ["a_lo"], axis=0),
        n("Gather", ["sorted_a", "hi_i"], ["a_hi"], axis=0),
        n("Add", ["a_lo", "a_hi"], ["a_sum"]),
        n("Mul", ["a_sum", "half_f"], ["mad"]),
        n("Mul", ["mad", "mad_scale"], ["sigma"]),
        # the spread of the change and its median: the values at sorted positions n // 4 and n // 2 of the blurred
        # change at half size, on a grid of step (s + 1) // 2 (s: the noise grid's)
        n("Add", ["grid", "one_i"], ["grid_1"]),
        n("Div", ["grid_1", "two_i"], ["half_grid"]),
        n("Slice", ["bhv", "m_starts", "m_ends", "m_axes", "half_grid"], ["mg"]),
        n("Reshape", ["mg", "flat"], ["mflat"]),
        n("Shape", ["mflat"], ["m_count"]),
        n("Div", ["m_count", "four_i"], ["q_i"]),
        n("Div", ["m_count", "two_i"], ["h_i"]),
        n("Add", ["h_i", "one_i"], ["h_k"]),
        n("TopK", ["mflat", "h_k"], ["m_low", "_im"], largest=0, sorted=1),
        n("Gather", ["m_low", "q_i"], ["spread"], axis=0),
        n("Gather", ["m_low", "h_i"], ["m_mid"], axis=0),
        n("Gather", ["params", "i4"], ["prior"], axis=0),
        n("Gather", ["params", "i5"], ["gain"], axis=0),
        n("Gather", ["params", "i6"], ["cut_gain"], axis=0),
        # the motion threshold: from the noise estimate, or (where the spread exceeds that) from the spread
        n("Mul", ["sigma", "k"], ["ks"]),
        n("Max", ["ks", "floor"], ["limit0"]),
        n("Greater", ["prior", "limit0"], ["by_spread"]),
        n("Mul", ["prior", "gain"], ["spread_limit"]),
        n("Where", ["by_spread", "spread_limit", "limit0"], ["limit"]),
        n("Mul", ["prior", "cut_gain"], ["spread_cut"]),
        n("Where", ["by_spread", "spread_cut", "huge"], ["cut_level"]),
        n("LessOrEqual", ["m_mid", "cut_level"], ["calm"]),
        n("GreaterOrEqual", ["motion", "limit"], ["moved"]),
        n("Cast", ["moved"], ["movedf"], to=TensorProto.FLOAT),
        n("ReduceMean", ["movedf"], ["share"], keepdims=0),
        n("LessOrEqual", ["share", "cut_share"], ["few_moved"]),
        n("And", ["few_moved", "calm"], ["no_cut_1"]),
        n("Reshape", ["no_cut_1", "scalar"], ["no_cut"]),
        n("Cast", ["no_cut"], ["no_cut_f"], to=TensorProto.FLOAT),
        n("Div", ["motion", "limit"], ["ratio"]),
        n("Sub", ["one_f", "ratio"], ["lin"]),
        n("Relu", ["lin"], ["lin0"]),
        n("Mul", ["max_w", "keep"], ["mk"]),
        n("Mul", ["mk", "no_cut_f"], ["mkc"]),
        n("Mul", ["lin0", "mkc"], ["w_nchw"]),
        n("Transpose", ["w_nchw"], ["w"], perm=[0, 2, 3, 1]),  # (1, H, W, 1)
        # out = result + w (prev - result): a convex blend, in 0..255
        n("Sub", ["prev", "rf"], ["gap"]),
        n("Mul", ["w", "gap"], ["step"]),
        n("Add", ["rf", "step"], ["state"]),
        n("Round", ["state"], ["rounded"]),
        n("Clip", ["rounded", "zero_f", "top_f"], ["clipped"]),
        n("Cast", ["clipped"], ["output"], to=TensorProto.UINT8),
    ]
    dims = ["n", "h", "w", 3]
    inputs = [
        helper.make_tensor_value_info("frame", TensorProto.UINT8, dims),
        helper.make_tensor_value_info("result", TensorProto.UINT8, dims),
        helper.make_tensor_value_info("prev", TensorProto.FLOAT, dims),
        helper.make_tensor_value_info("params", TensorProto.FLOAT, [7]),
        helper.make_tensor_value_info("grid", TensorProto.INT64, [2]),
    ]
    outputs = [
        helper.make_tensor_value_info("output", TensorProto.UINT8, dims),
        helper.make_tensor_value_info("state", TensorProto.FLOAT, dims),
        helper.make_tensor_value_info("sigma", TensorProto.FLOAT, [1]),
        helper.make_tensor_value_info("spread", TensorProto.FLOAT, [1]),
    ]
    graph = helper.make_graph(nodes, "edge_ae_temporal_filter", inputs, outputs, init)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
                              producer_name="edge-ae", doc_string=__doc__.split("\n\n")[0])
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv: list[str] | None = None) -> None:
    """``python -m export.temporal_graph [OUTPUT.onnx]``: write the filter's graph (atomically)."""
    import argparse

    from edge_runtime.errors import EdgeAEError
    from edge_runtime.files import write_bytes_atomic

    parser = argparse.ArgumentParser(prog="python -m export.temporal_graph",
                                     description="Write the temporal filter as an ONNX graph.")
    parser.add_argument("output", nargs="?", type=Path, default=DEFAULT_PATH,
                        help=f"the .onnx file to write (default: {DEFAULT_PATH})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    path: Path = args.output
    if path.suffix.lower() != ".onnx":
        parser.error(f"{path}: the output is an ONNX graph; give a file name ending in .onnx")
    data = filter_model().SerializeToString()
    try:
        write_bytes_atomic(path, data)
    except EdgeAEError as e:
        parser.exit(1, f"error: {e}\n")
    print(f"wrote {path} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
