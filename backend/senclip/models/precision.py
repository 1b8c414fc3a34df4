"""Which engine and number format run the image encoder: ``--precision auto|fp32|bf16|int8``.

The choice is pure logic over two facts, both passed in so tests can fake them: what the CPU
has (:class:`CpuFeatures`, read from ``/proc/cpuinfo`` or OpenVINO's device report) and which
engines are installed. Measured on ViT-B/32 (docs/performance.md, batch 64, same ONNX export):

- VNNI or AMX with OpenVINO installed: OpenVINO on a static int8 (QDQ) export
  (:mod:`senclip.models.static_int8`): on a Zen 4 (AVX-512 VNNI + BF16, no AMX) 3.2x ORT fp32 end to end
  (cosine 0.9997), against 2.0x for OpenVINO bf16 (bench/results/autotune-2026-12-06-zen4.md). This is
  the table only: ``auto`` on ``--backend onnx`` measures the candidates (:mod:`senclip.models.autotune`)
  and uses the table when that is off (``SENCLIP_AUTOTUNE=0``).
- AMX (Sapphire Rapids and later), then: OpenVINO bf16 2.4-2.8x ORT fp32 (cosine 0.99995); ORT int8 2.3x.
- VNNI without OpenVINO: ORT dynamic int8 (u8*s8 dot products in one instruction).
- AVX2 only: ORT int8 with 7-bit weights (``reduce_range``) ~1.6x fp32 at cosine >= 0.9995 on a
  random ViT-B/32; with trained weights that bound is not known in advance, so ``auto`` takes any
  reduced precision only after it has measured its cosine to fp32 on real chips
  (:mod:`senclip.models.calibration`), and keeps fp32 when it is below ``MIN_COSINE``.

``auto`` never changes the backend the user chose: ``--backend onnx`` runs the ONNX export on
ONNX Runtime or OpenVINO, ``--backend torch`` runs PyTorch (bf16 by autocast).
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from senclip.core.choices import choices
from senclip.core.errors import BackendUnavailableError, InputError

PRECISIONS = tuple(choices("precision"))  # resources/options.json, shared with the CLI and the plugin
MIN_COSINE = 0.999  # the agreement to fp32 any reduced precision must keep
OPENVINO_PIP = "pip install 'openvino>=2024.0'"


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's matrix units that decide the fastest format."""

    name: str = "unknown"
    amx_bf16: bool = False  # AMX tiles (bf16 and int8)
    avx512_bf16: bool = False
    vnni: bool = False  # AVX512_VNNI or AVX_VNNI: int8 dot products
    avx2: bool = False
    flags: tuple = field(default=(), compare=False)

    @property
    def bf16(self) -> bool:
        """Native bf16 arithmetic (without it bf16 is emulated and slower than fp32)."""
        return self.amx_bf16 or self.avx512_bf16

    def summary(self) -> str:
        units = [u for u, ok in (("AMX", self.amx_bf16), ("AVX512_BF16", self.avx512_bf16),
                                 ("VNNI", self.vnni), ("AVX2", self.avx2)) if ok]
        return f"{self.name} ({', '.join(units) or 'no AVX2'})"

    @classmethod
    def from_flags(cls, flags, name: str = "unknown") -> CpuFeatures:
        f = set(flags)
        return cls(name=name, amx_bf16="amx_bf16" in f, avx512_bf16="avx512_bf16" in f,
                   vnni=bool({"avx512_vnni", "avx_vnni", "avx512vnni"} & f), avx2="avx2" in f,
                   flags=tuple(sorted(x for x in f if x.startswith(("avx", "amx", "fma")))))


_CPU: CpuFeatures | None = None


def cpu_features() -> CpuFeatures:
    """This machine's CPU: ``/proc/cpuinfo`` on Linux; elsewhere OpenVINO's own report (BF16 /
    INT8 capabilities) when it is installed, else nothing assumed (fp32)."""
    global _CPU
    if _CPU is None:
        _CPU = _read_cpuinfo() or _openvino_cpu() or CpuFeatures()
    return _CPU


def _read_cpuinfo() -> CpuFeatures | None:
    name, flags = "unknown", None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name") and name == "unknown":
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and flags is None:
                    flags = line.split(":", 1)[1].split()
                if flags is not None and name != "unknown":
                    break
    except OSError:
        return None
    return CpuFeatures.from_flags(flags, name) if flags is not None else None


def _openvino_cpu() -> CpuFeatures | None:
    if not has_module("openvino"):
        return None
    try:
        import openvino

        core = openvino.Core()
        caps = set(core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
        name = str(core.get_property("CPU", "FULL_DEVICE_NAME"))
    except Exception:  # a broken install must not stop the fp32 path
        return None
    # OpenVINO reports BF16 only with native units; INT8 on every x86 CPU, so it says nothing of VNNI
    return CpuFeatures(name=name, avx512_bf16="BF16" in caps, avx2=True)


def has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def installed_engines() -> frozenset:
    """Engines importable here: ``onnxruntime``, ``openvino``, ``torch``."""
    return frozenset(e for e, mod in (("onnxruntime", "onnxruntime"), ("openvino", "openvino"), ("torch", "torch"))
                     if has_module(mod))


@dataclass(frozen=True)
class Choice:
    """One way to run the image encoder; ``reason`` says why it was picked (for the log)."""

    engine: str  # "onnxruntime" | "openvino" | "torch"
    precision: str  # "fp32" | "bf16" | "int8"
    reason: str = ""

    @property
    def label(self) -> str:
        return f"{self.engine} {self.precision}"


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


def candidates(backend: str, device: str, cpu: CpuFeatures, engines) -> list[Choice]:
    """What ``auto`` tries, fastest expected first; the last is always the fp32 reference."""
    engines = set(engines)
    if backend == "torch":
        if device.startswith("cuda"):
            return [Choice("torch", "bf16", "CUDA: bf16 autocast"), Choice("torch", "fp32", "reference")]
        if cpu.amx_bf16:
            return [Choice("torch", "bf16", "CPU has AMX: bf16 autocast"), Choice("torch", "fp32", "reference")]
        return [Choice("torch", "fp32", "no native bf16 units on this CPU: fp32")]
    if device.startswith("cuda"):
        return [Choice("onnxruntime", "fp32", "CUDA provider: fp32")]
    out = []
    if (cpu.vnni or cpu.amx_bf16) and "openvino" in engines:
        out.append(Choice("openvino", "int8", "CPU has VNNI and OpenVINO is installed: static int8"))
    if cpu.bf16 and "openvino" in engines:
        units = "AMX" if cpu.amx_bf16 else "AVX512_BF16"
        out.append(Choice("openvino", "bf16", f"CPU has {units} and OpenVINO is installed: bf16"))
    if "onnxruntime" in engines:
        if cpu.vnni or cpu.amx_bf16:
            out.append(Choice("onnxruntime", "int8", "CPU has VNNI: dynamic int8"))
        elif cpu.avx2:
            out.append(Choice("onnxruntime", "int8", "AVX2 only: dynamic int8 with 7-bit weights"))
        out.append(Choice("onnxruntime", "fp32", "reference"))
    elif "openvino" in engines:
        out.append(Choice("openvino", "fp32", "onnxruntime not installed: OpenVINO fp32"))
    if not out:
        raise BackendUnavailableError(
            "the onnx backend needs ONNX Runtime (pip install onnxruntime) or OpenVINO "
            f"({OPENVINO_PIP}); neither is installed")
    if cpu.bf16 and "openvino" not in engines:
        out[0] = Choice(out[0].engine, out[0].precision,
                        out[0].reason + f" (this CPU has bf16 units: {OPENVINO_PIP} would be faster)")
    return out


def explicit(precision: str, backend: str, device: str, cpu: CpuFeatures, engines) -> Choice:
    """The engine for a precision the user named; an impossible one is a clear error."""
    engines = set(engines)
    if backend == "torch":
        if precision == "int8":
            raise InputError("--precision int8 runs the int8-quantised ONNX image encoder: use it with "
                             "--backend onnx")
        if precision == "bf16" and not device.startswith("cuda") and not cpu.bf16:
            raise InputError(f"--precision bf16: this CPU ({cpu.summary()}) has no bf16 units, so bf16 would be "
                             "slower than fp32; use --precision auto or fp32")
        return Choice("torch", precision, "as asked")
    if device.startswith("cuda") and precision != "fp32":
        raise InputError(f"--precision {precision} with --backend onnx runs on the CPU; on CUDA use --precision fp32, "
                         "or --backend torch --precision bf16")
    if precision == "bf16":
        if "openvino" not in engines:
            raise BackendUnavailableError(f"--precision bf16 with --backend onnx runs on OpenVINO: {OPENVINO_PIP}, "
                                          "or use --precision auto")
        if not cpu.bf16:
            raise InputError(f"--precision bf16: this CPU ({cpu.summary()}) has no bf16 units (AMX or AVX512_BF16); "
                             "use --precision auto, int8 or fp32")
        return Choice("openvino", "bf16", "as asked")
    if "onnxruntime" in engines:
        return Choice("onnxruntime", precision, "as asked")
    if "openvino" in engines and precision == "fp32":
        return Choice("openvino", "fp32", "onnxruntime not installed")
    raise BackendUnavailableError("the onnx backend needs ONNX Runtime: pip install onnxruntime"
                                  + (f" (or {OPENVINO_PIP} for fp32/bf16)" if precision == "int8" else ""))
