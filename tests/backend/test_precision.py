"""--precision auto|fp32|bf16|int8: the choice logic with the CPU faked, and agreement to fp32.

No timing is asserted (speed belongs in ``make bench``). CPU features and installed engines are
faked through :mod:`senclip.models.precision`, so the AMX / VNNI / AVX2 branches run on any machine.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rasterio

from senclip.models import calibration, precision
from senclip.core.errors import BackendUnavailableError, InputError
from feedback_log import InfoLog as Log
from senclip.models.loading import load_model
from senclip.models.precision import Choice, CpuFeatures, candidates, explicit

SPR_FLAGS = ("fpu sse2 avx avx2 fma avx512f avx512bw avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 "
             "avx_vnni").split()
AMX = CpuFeatures.from_flags(SPR_FLAGS, "Xeon SPR")
VNNI = CpuFeatures.from_flags("avx avx2 fma avx512f avx512_vnni".split(), "Xeon CLX")
AVX2 = CpuFeatures.from_flags("avx avx2 fma".split(), "EPYC")
OLD = CpuFeatures.from_flags("sse2 avx".split(), "old")
ALL = {"onnxruntime", "openvino", "torch"}
ORT_ONLY = {"onnxruntime"}


def first(backend, cpu, engines, device="cpu") -> Choice:
    return candidates(backend, device, cpu, engines)[0]


def test_flags_are_read_like_proc_cpuinfo():
    assert AMX.amx_bf16 and AMX.bf16 and AMX.vnni and AMX.avx2
    assert VNNI.vnni and not VNNI.bf16 and AVX2.avx2 and not AVX2.vnni and not OLD.avx2
    assert "AMX" in AMX.summary() and "VNNI" not in AVX2.summary()


@pytest.mark.parametrize("cpu,engines,expected", [
    (AMX, ALL, ("openvino", "int8")),  # OpenVINO on the static int8 export, then bf16
    (AMX, ORT_ONLY, ("onnxruntime", "int8")),  # OpenVINO missing: int8 on the VNNI/AMX units
    (VNNI, ALL, ("openvino", "int8")),
    (VNNI, ORT_ONLY, ("onnxruntime", "int8")),
    (AVX2, ALL, ("onnxruntime", "int8")),
    (OLD, ALL, ("onnxruntime", "fp32")),
    (AMX, {"openvino"}, ("openvino", "int8")),
    (AVX2, {"openvino"}, ("openvino", "fp32")),
])
def test_auto_candidates_onnx(cpu, engines, expected):
    cands = candidates("onnx", "cpu", cpu, engines)
    assert (cands[0].engine, cands[0].precision) == expected
    assert cands[-1].precision == "fp32"  # the reference that auto falls back to
    if cpu is AMX and "openvino" not in engines:
        assert "pip install" in cands[0].reason and "openvino" in cands[0].reason


def test_auto_candidates_torch_and_cuda():
    assert first("torch", AMX, ALL).precision == "bf16"
    assert [c.precision for c in candidates("torch", "cpu", AVX2, ALL)] == ["fp32"]
    assert first("torch", AVX2, ALL, device="cuda:0").precision == "bf16"
    assert [c.label for c in candidates("onnx", "cuda", AMX, ALL)] == ["onnxruntime fp32"]
    with pytest.raises(BackendUnavailableError, match="onnxruntime"):
        candidates("onnx", "cpu", AVX2, {"torch"})


def test_explicit_precisions():
    assert explicit("bf16", "onnx", "cpu", AMX, ALL).engine == "openvino"
    assert explicit("int8", "onnx", "cpu", AVX2, ALL).label == "onnxruntime int8"
    assert explicit("fp32", "onnx", "cpu", AMX, {"openvino"}).engine == "openvino"
    assert explicit("bf16", "torch", "cuda", AVX2, ALL).label == "torch bf16"
    with pytest.raises(InputError, match="no bf16 units"):
        explicit("bf16", "onnx", "cpu", AVX2, ALL)
    with pytest.raises(InputError, match="no bf16 units"):
        explicit("bf16", "torch", "cpu", VNNI, ALL)
    with pytest.raises(BackendUnavailableError, match="pip install 'openvino"):
        explicit("bf16", "onnx", "cpu", AMX, ORT_ONLY)
    with pytest.raises(InputError, match="--backend onnx"):
        explicit("int8", "torch", "cpu", AMX, ALL)
    with pytest.raises(InputError, match="unknown precision"):
        precision.check_precision("fp16")


def test_this_machine_is_read():
    cpu = precision.cpu_features()
    assert cpu.name != "" and isinstance(cpu.flags, tuple)
    assert {"onnxruntime", "openvino", "torch"} <= precision.installed_engines()


# -- auto on real encoders, with the CPU faked -----------------------------------------------



@pytest.fixture
def fake_cpu(monkeypatch):
    def use(cpu, engines=ALL):
        monkeypatch.setenv("SENCLIP_AUTOTUNE", "0")  # these test the table; tests/backend/test_autotune.py the measuring
        monkeypatch.setattr(precision, "cpu_features", lambda: cpu)
        monkeypatch.setattr(precision, "installed_engines", lambda: frozenset(engines))
    return use


def _agree(lm, ref, chips):
    a, b = ref.image.encode_chips(chips), lm.image.encode_chips(chips)
    return float((a * b).sum(1).min())


@pytest.mark.parametrize("cpu,engines,expected", [
    (AVX2, ALL, [("onnxruntime", "int8")]),
    # OpenVINO's static int8 on a faked AMX CPU really runs on this machine's kernels: without VNNI its
    # u8*s8 sums can saturate and the cosine gate may refuse it (seen: 0.996 on an AVX2-only EPYC), and
    # then the table's next choice must run, with the refusal said
    (AMX, ALL, [("openvino", "int8"), ("openvino", "bf16")]),
    (AMX, ORT_ONLY, [("onnxruntime", "int8")]),
    (OLD, ALL, [("onnxruntime", "fp32")]),
])
def test_auto_loads_the_choice_checks_it_and_records_why(tiny_checkpoint, fake_cpu, cpu, engines, expected):
    fake_cpu(cpu, engines)
    log = Log()
    lm = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", precision="auto", feedback=log)
    chosen = (lm.engine, lm.precision)
    assert chosen in expected, log.infos
    for engine, prec in expected[:expected.index(chosen)]:  # a better choice passed over only for its cosine
        assert any(f"{engine} {prec} has cosine" in t and "not used" in t for t in log.infos), log.infos
    expected = chosen
    assert type(lm.image).__name__ == ("OpenVinoImageEncoder" if expected[0] == "openvino" else "OnnxImageEncoder")
    assert lm.precision_record()["precision"] == expected[1] and cpu.name in lm.precision_reason
    assert any(expected[1] in t and cpu.name in t for t in log.infos), log.infos
    if expected[1] != "fp32":
        checks = json.loads(calibration.checks_file().read_text())
        key = calibration.check_key(lm.model_id, lm.checksum, *expected, cpu.name)
        assert checks[key]["min_cosine"] >= precision.MIN_COSINE and "cosine to fp32" in lm.precision_reason
    ref = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", precision="fp32")
    assert ref.precision == "fp32" and ref.engine == "onnxruntime"
    assert _agree(lm, ref, calibration.calibration_chips()) >= precision.MIN_COSINE


def test_auto_keeps_fp32_when_the_cosine_check_fails(tiny_checkpoint, fake_cpu, monkeypatch):
    fake_cpu(AVX2)
    measured = []

    def bad(ref, cand, chips=None):
        measured.append(1)
        return 0.99

    monkeypatch.setattr(calibration, "min_cosine", bad)
    log = Log()
    lm = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", precision="auto", feedback=log)
    assert (lm.engine, lm.precision) == ("onnxruntime", "fp32") and measured == [1]
    assert any("0.99000 < 0.999" in t for t in log.infos)
    again = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", precision="auto")
    assert again.precision == "fp32" and measured == [1]  # the result is cached, not measured again


@pytest.mark.parametrize("prec", ["bf16", "fp32"])
def test_openvino_reads_our_export_and_agrees(tiny_checkpoint, prec):
    """OpenVINO on the same image.onnx (metadata included); bf16 runs as bf16 only on CPUs with
    bf16 units, elsewhere OpenVINO keeps f32: the agreement bound holds either way."""
    from senclip.models.encoders.openvino_encoder import OpenVinoImageEncoder
    from senclip.models.onnx_export import default_export_dir

    ref = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu")
    enc = OpenVinoImageEncoder(default_export_dir(ref.model_id, ref.checksum) / "image.onnx", prec)
    assert enc.meta["checksum"] == ref.checksum and enc.preprocess == ref.preprocess and enc.embed_dim == 32
    chips = calibration.calibration_chips()
    assert calibration.min_cosine(ref.image, enc, chips) >= 0.999
    assert enc.encode_chips(np.zeros((0, 3, 64, 64), np.uint8)).shape == (0, 32)


def test_torch_bf16_autocast_agrees_with_fp32(tiny_checkpoint):
    """The CUDA path's bf16 autocast, run on the CPU (emulated there, so only correctness)."""
    fp32 = load_model(checkpoint=tiny_checkpoint, device="cpu", precision="fp32")
    bf16 = load_model(checkpoint=tiny_checkpoint, device="cpu", precision="bf16") if precision.cpu_features().bf16 \
        else None
    if bf16 is None:  # explicit bf16 is refused on this CPU (tested above); build the encoder directly
        from senclip.models.encoders.torch_encoder import TorchImageEncoder

        bf16 = TorchImageEncoder(fp32.image.module.model, fp32.preprocess, "cpu", "bf16")
    else:
        bf16 = bf16.image
    chips = calibration.calibration_chips()
    a, b = fp32.image.encode_chips(chips), bf16.encode_chips(chips)
    assert not np.array_equal(a, b)  # it did compute in bf16
    assert float((a * b).sum(1).min()) >= 0.999


def test_int8_is_made_from_the_fp32_export_without_torch(tiny_checkpoint, senclip_home):
    fp32 = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu")
    q = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", precision="int8")
    assert q.precision == "int8" and q.image.meta["int8"] == "true" and q.image.path.parent.name.endswith("-int8")
    assert q.image.meta["checksum"] == fp32.checksum and (q.image.path.parent / "text.onnx").is_file()
    assert calibration.min_cosine(fp32.image, q.image) >= 0.999


def test_deprecated_int8_flag_still_works(tiny_checkpoint):
    lm = load_model(checkpoint=tiny_checkpoint, backend="onnx", device="cpu", int8=True)
    assert lm.precision == "int8"


def test_precision_is_recorded_in_store_and_geotiff(s2_scene, tmp_path, tiny_checkpoint):
    from senclip.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["-q", "classify", str(s2_scene), "--classes", "Forest;Water", "--checkpoint", str(tiny_checkpoint),
              "--backend", "onnx", "--precision", "int8", "--save-embeddings", str(tmp_path / "st"),
              "--out", str(tmp_path / "m.tif")])
    assert e.value.code == 0
    meta = json.loads((tmp_path / "st" / "meta.json").read_text())
    assert meta["precision"]["precision"] == "int8" and meta["precision"]["engine"] == "onnxruntime"
    with rasterio.open(tmp_path / "m.tif") as ds:
        tag = json.loads(ds.tags()["SENCLIP_PRECISION"])
    assert tag["precision"] == "int8" and tag["engine"] == "onnxruntime"


REPROMPT = textwrap.dedent("""
    import json, sys
    from senclip.cli.main import main
    try:
        main(sys.argv[1:])
    except SystemExit as e:
        code = e.code
    print(json.dumps({"code": code, "loaded": sorted(m for m in sys.modules
                      if m.split(".")[0] in ("torch", "open_clip", "torchvision"))}))
""")


def test_reprompting_from_a_store_loads_only_the_onnx_text_encoder(s2_scene, tmp_path, tiny_checkpoint):
    """`senclip classify --embeddings` with the model's ONNX export cached: no torch, no open_clip."""
    import senclip

    senclip.embed(s2_scene, tmp_path / "st", checkpoint=tiny_checkpoint, backend="torch", precision="fp32")
    load_model(checkpoint=tiny_checkpoint, backend="onnx")  # caches the export, as any onnx run does
    (tmp_path / "run.py").write_text(REPROMPT)
    args = ["-q", "classify", "--embeddings", str(tmp_path / "st"), "--classes", "Forest;Water",
            "--out", str(tmp_path / "m.tif")]
    proc = subprocess.run([sys.executable, str(tmp_path / "run.py"), *args], capture_output=True, text=True,
                          timeout=120)
    out = json.loads(proc.stdout.splitlines()[-1])
    assert out["code"] == 0, proc.stderr
    assert out["loaded"] == []
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert ds.tags()["SENCLIP_TEXT_BACKEND"] == "onnx/cpu"
        ref_tags = ds.tags()
    senclip.classify(embeddings=tmp_path / "st", out=tmp_path / "ref.tif", classes="Forest;Water",
                     checkpoint=tiny_checkpoint, backend="torch")
    with rasterio.open(tmp_path / "m.tif") as a, rasterio.open(tmp_path / "ref.tif") as b:
        assert (a.read(1) == b.read(1)).mean() >= 0.99
        assert ref_tags["SENCLIP_CHECKSUM_SHA256"] == b.tags()["SENCLIP_CHECKSUM_SHA256"]
