"""Static int8 (QDQ) image encoder, made from the fp32 export, for OpenVINO to run.

Why: ORT's dynamic int8 quantises activations at run time and keeps every non-GEMM op in fp32; a
statically quantised QDQ graph (fixed activation scales, per-channel int8 weights) lets OpenVINO's
CPU plugin fuse the int8 MatMuls into VNNI kernels and run the rest in bf16 where the CPU has it.
On an AMD Zen 4 (AVX-512 VNNI + BF16, no AMX, 2 cores) with a random ViT-B/32 that measured
3.3x ORT fp32 at cosine 0.9997, against 2.3x for ORT dynamic int8 and 2.0x for OpenVINO bf16
(bench/results/autotune-*-zen4.md). Static scales can clip activation outliers that trained weights
may have, so ``--precision auto`` runs it only after its cosine to fp32 passed on real chips.

Calibration: the even-indexed 16 of the 32 shipped Sentinel-2 chips; the accuracy gate measures all
32, so half of the chips it is judged on were never seen by the calibration.
Needs onnx and onnxruntime (its quantiser), not torch.
"""
from __future__ import annotations

from pathlib import Path

from senclip.core.feedback import Feedback

SUFFIX = "-qdq"  # sibling folder of the fp32 export: <model>-<sha8>-v<format>-qdq
STATIC_SETTINGS = {"format": "QDQ", "activations": "QUInt8", "weights": "QInt8", "per_channel": True,
                   "calibration": "MinMax", "calibration_chips": "shipped chips 0, 2, ..., 30",
                   "nodes": "MatMul/Gemm with a constant weight (not the resize or attention products)"}


def weight_matmuls(path: Path) -> list[str]:
    """MatMul/Gemm nodes whose second input is a stored weight: the linear layers. The resize
    products (constant x chips) and attention (activation x activation) stay fp32: quantising
    activations on both sides costs accuracy for little time."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {i.name for i in model.graph.initializer}
    return [n.name for n in model.graph.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in weights]


def _reader(batch: int = 8):
    from onnxruntime.quantization import CalibrationDataReader

    from senclip.models.calibration import calibration_chips

    chips = calibration_chips()[::2]

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.parts = iter([chips[i:i + batch] for i in range(0, len(chips), batch)])

        def get_next(self):
            part = next(self.parts, None)
            return None if part is None else {"chips": part}

    return Reader()


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    quantize_static(str(src), str(dst), _reader(), quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, nodes_to_quantize=weight_matmuls(src),
                    op_types_to_quantize=["MatMul", "Gemm"], calibrate_method=CalibrationMethod.MinMax)


def static_export(fp32_dir: str | Path, out_dir: str | Path, feedback: Feedback | None = None) -> Path:
    """The QDQ int8 export made from an fp32 one (text encoder copied), built in a temporary
    sibling folder and renamed (:func:`senclip.models.onnx_export.derived_export`)."""
    from senclip.models.onnx_export import derived_export

    return derived_export(fp32_dir, out_dir, "static int8 for OpenVINO", _quantize, STATIC_SETTINGS, feedback)
