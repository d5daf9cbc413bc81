"""Lower a video_denoiser checkpoint's gate bias: the model then trusts the past less everywhere (less ghosting
under motion it misjudges, a little less gain on static scenes).

    python -m train.recipes.shift_gate IN.pt SHIFT OUT.pt

The bundled video.onnx is the GPU run of train/recipes/gpu.sh with SHIFT 1.0, chosen among 0, 1 and 2 with
``python -m benchmarks.video_denoise`` (README, "Video: the recurrent model"); OUT records the shift.
"""

from __future__ import annotations

import sys

import torch

from train.checkpoint import load_checkpoint, save_checkpoint


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    source, shift, out = argv[0], float(argv[1]), argv[2]
    model, payload = load_checkpoint(source)
    if not hasattr(model, "tail_ctrl_bias"):
        raise SystemExit(f"{source}: not a video_denoiser checkpoint ({payload['config']['family']})")
    before = float(model.tail_ctrl_bias[0].detach())
    with torch.no_grad():
        model.tail_ctrl_bias[0] -= shift  # the first control output is the blend gate's logit
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    meta["data"] = {**meta.get("data", {}), "gate_bias_shift": -shift, "shifted_from": source}
    save_checkpoint(out, model, meta)
    print(f"wrote {out}: gate bias {before:.3f} -> {before - shift:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
