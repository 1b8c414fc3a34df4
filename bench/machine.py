"""Machine facts and the GEMM roofline the CPU encoder figures are compared to."""
from __future__ import annotations

import os
import platform

import numpy as np

from .common import VIT_B32_GFLOP, Row, best_rate


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("flags"):
                return vector_flags(line.split(":", 1)[1].split())
    except OSError:
        pass
    return []


def vector_flags(flags) -> list[str]:
    """The flags that decide which engine and precision are fast here: AVX2/FMA, every AVX-512
    extension (f, vnni, bf16, fp16, ...), AVX-VNNI and the AMX tiles (what ``grep -o
    'avx512[a-z_0-9]*\\|amx[a-z_0-9]*' /proc/cpuinfo`` shows)."""
    keep = [f for f in set(flags) if f in ("avx2", "fma", "f16c") or f.startswith(("avx512", "avx_vnni", "amx"))]
    return sorted(keep, key=lambda f: (not f.startswith(("avx2", "fma", "f16c")), f))


def facts() -> dict:
    import torch

    d = {"cpu": cpu_model(), "cpu_flags": cpu_flags(), "logical_cores": os.cpu_count(),
         "affinity_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
         "torch_threads": torch.get_num_threads(), "platform": platform.platform(),
         "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
         "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            d["mem_gb"] = round(int(f.readline().split()[1]) / 2**20, 1)
        d["load_avg_at_start"] = os.getloadavg()
    except OSError:
        pass
    for mod in ("onnxruntime", "open_clip", "rasterio", "openvino"):
        try:
            m = __import__(mod)
            d[mod] = m.__version__
        except ImportError:
            d[mod] = None
    try:
        import rasterio

        d["gdal"] = rasterio.__gdal_version__
    except ImportError:
        pass
    return d


def gemm_gflops(n: int = 2048, repeats: int = 5) -> dict:
    """Best fp32 GEMM rate of numpy (BLAS) and torch, all threads: the practical compute limit
    a dense fp32 encoder can reach on this CPU."""
    import torch

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    work = 2 * n**3 / 1e9
    a @ b
    r_np = best_rate(lambda: a @ b, work, repeats=repeats)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    torch.mm(ta, tb)
    r_t = best_rate(lambda: torch.mm(ta, tb), work, repeats=repeats)
    return {"numpy": r_np, "torch": r_t, "best": max(r_np, r_t), "n": n}


def roofline_row(g: dict) -> Row:
    chips = g["best"] / VIT_B32_GFLOP
    return Row("roofline", "fp32 GEMM (best of numpy, torch)", g["best"], "GFLOP/s",
               note=f"numpy {g['numpy']:.0f}, torch {g['torch']:.0f} GFLOP/s ({g['n']}² fp32); "
                    f"ViT-B/32 roofline {chips:.1f} chips/s at {VIT_B32_GFLOP} GFLOP/chip",
               extra=dict(g, roofline_chips_s=chips))


# -- the machine's own limits per number format, for ratios measured in the same run -----------

def gemm_fns(n: int = 2048) -> dict:
    """One-call GEMM functions per format, and the work (GFLOP or GOP) of one call.

    fp32: best of numpy (BLAS) and torch. bf16: torch (oneDNN; AMX where present), only on CPUs
    with bf16 units (elsewhere it is emulated and says nothing about the hardware). int8: ONNX
    Runtime's own MatMulInteger kernel (u8 x s8, the one our int8 encoder runs), so the ratio
    compares the encoder with the int8 rate this engine reaches on this CPU.
    """
    import torch

    from senclip.models.precision import cpu_features

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    fns = {"fp32": [lambda: a @ b, lambda: torch.mm(ta, tb)]}
    if cpu_features().bf16:
        ha, hb = ta.bfloat16(), tb.bfloat16()
        fns["bf16"] = [lambda: torch.mm(ha, hb)]
    int8 = _ort_int8_gemm(n)
    if int8 is not None:
        fns["int8"] = [int8]
    return {"fns": fns, "work": 2 * n**3 / 1e9, "n": n}


def _ort_int8_gemm(n: int):
    try:
        import onnx
        import onnxruntime as ort
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        return None
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.integers(-64, 64, (n, n), dtype=np.int8), "B")
    node = helper.make_node("MatMulInteger", ["A", "B"], ["Y"])
    graph = helper.make_graph([node], "int8gemm", [helper.make_tensor_value_info("A", TensorProto.UINT8, [n, n])],
                              [helper.make_tensor_value_info("Y", TensorProto.INT32, [n, n])], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = os.cpu_count() or 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    x = rng.integers(0, 256, (n, n), dtype=np.uint8)
    return lambda: sess.run(None, {"A": x})


class Limits:
    """Best GEMM rate per format, measured in rounds between the engine runs (``measure_round``)
    so that the limit and the engine both get the quiet moments of a shared machine."""

    def __init__(self, n: int = 2048) -> None:
        g = gemm_fns(n)
        self.fns, self.work, self.n = g["fns"], g["work"], g["n"]
        self.best = {k: 0.0 for k in self.fns}
        for fs in self.fns.values():  # warm-up (thread pools, oneDNN kernels)
            for f in fs:
                f()

    def measure_round(self) -> None:
        for k, fs in self.fns.items():
            for f in fs:
                self.best[k] = max(self.best[k], best_rate(f, self.work, repeats=1))

    def chips_per_s(self, fmt: str) -> float | None:
        g = self.best.get(fmt)
        return g / VIT_B32_GFLOP if g else None

    def rows(self) -> list[Row]:
        out = []
        for fmt in ("fp32", "bf16", "int8"):
            g = self.best.get(fmt)
            unit = "GOP/s" if fmt == "int8" else "GFLOP/s"
            if not g:
                why = "no bf16 units on this CPU (AMX/AVX512_BF16)" if fmt == "bf16" else "onnx not installed"
                out.append(Row("roofline", f"{fmt} GEMM", None, unit, note=f"not measured: {why}"))
                continue
            out.append(Row("roofline", f"{fmt} GEMM", g, unit,
                           note=f"{self.n}² best of rounds interleaved with the engine runs; ViT-B/32 limit "
                                f"{g / VIT_B32_GFLOP:.1f} chips/s at {VIT_B32_GFLOP} GFLOP/chip",
                           extra={"chips_s": g / VIT_B32_GFLOP}))
        return out
