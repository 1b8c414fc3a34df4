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
                have = set(line.split(":", 1)[1].split())
                return [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile") if f in have]
    except OSError:
        pass
    return []


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
    for mod in ("onnxruntime", "open_clip", "rasterio"):
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
