"""The command line: real checkpoints (tiny, random), every bad input → exit 2, one line, no output."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from s2data import write_s2

from senclip.cli.main import main

CLASSES = "Forest;Sea or Lake;Annual Crop Land"


def run(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    out = capsys.readouterr()
    return e.value.code, out.out, out.err


def test_classify_with_a_senclip_format_checkpoint(s2_scene, tmp_path, tiny_checkpoint, capsys):
    out = tmp_path / "map.tif"
    code, stdout, err = run(["-q", "classify", s2_scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                             "--out", out, "--save-embeddings", tmp_path / "store"], capsys)
    assert code == 0, err
    assert "Forest" in stdout and "km²" in stdout
    with rasterio.open(out) as ds:
        cls = ds.read(1)
        tags = ds.tags()
    assert set(np.unique(cls)) <= {1, 2, 3} and cls.shape == (3, 5)
    assert tags["SENCLIP_MODEL"] == f"checkpoint:{Path(tiny_checkpoint).name}"
    assert len(tags["SENCLIP_CHECKSUM_SHA256"]) == 64
    assert json.loads(tags["SENCLIP_TILING"])["stride"] == 32
    # re-classify from the store with other prompts, without INPUT and without --checkpoint
    code, stdout, err = run(["-q", "classify", "--embeddings", tmp_path / "store", "--classes", "River;Forest",
                             "--out", tmp_path / "again.tif"], capsys)
    assert code == 0, err
    with rasterio.open(tmp_path / "again.tif") as ds:
        assert json.loads(ds.tags()["SENCLIP_CLASSES"]) == ["River", "Forest"]


def test_json_report(s2_scene, tmp_path, tiny_checkpoint, capsys):
    code, stdout, err = run(["-q", "classify", s2_scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                             "--out", tmp_path / "m.tif", "--json"], capsys)
    assert code == 0, err
    res = json.loads(stdout)
    assert res["classes"] == CLASSES.split(";") and sum(res["counts"].values()) + res["unclassified"] == 15
    assert res["path"] == str(tmp_path / "m.tif") and len(res["model"]["checksum"]) == 64


def test_long_and_non_ascii_prompts(s2_scene, tmp_path, tiny_checkpoint, capsys):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps({"Wald": ["ein Foto eines Waldes mit Bäumen, Moos und Pilzen 🌲"],
                                   "Mer": ["la mer " * 60]}, ensure_ascii=False), encoding="utf-8")
    code, _, err = run(["-q", "classify", s2_scene, "--prompts", prompts, "--checkpoint", tiny_checkpoint,
                        "--out", tmp_path / "m.tif"], capsys)
    assert code == 0, err
    assert "truncat" in err.lower()
    with rasterio.open(tmp_path / "m.tif") as ds:
        assert json.loads(ds.tags()["SENCLIP_CLASSES"]) == ["Wald", "Mer"]


def _raster(tmp_path, **kw):
    return write_s2(tmp_path / "in.tif", **kw)


def _two_band(tmp_path):
    p = tmp_path / "two.tif"
    with rasterio.open(p, "w", driver="GTiff", width=100, height=100, count=2, dtype="uint16", crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(0, 0, 10, 10)) as ds:
        ds.write(np.ones((2, 100, 100), dtype="uint16"))
    return p


def _text_file(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("not a raster")
    return p


BAD = {
    "missing input": (lambda t: t / "nope.tif", [], "does not exist"),
    "not a raster": (_text_file, [], "cannot read"),
    "too few bands": (_two_band, [], "has 2 band(s)"),
    "band index out of range": (lambda t: _raster(t), ["--bands", "5,4,3"], "only 4 band(s)"),
    "no crs": (lambda t: _raster(t, crs=None), [], "no coordinate reference system"),
    "all nodata": (lambda t: _raster(t, nodata_border=48, nodata=0), [], "valid pixels"),
    "tile too large": (lambda t: _raster(t), ["--tile", "512"], "--tile 512 is larger than the raster (160×96 px)"),
    "stride too large": (lambda t: _raster(t), ["--stride", "100"], "--stride must be between"),
    "empty classes": (lambda t: _raster(t), ["--classes", " ; "], "no classes given"),
    "duplicate classes": (lambda t: _raster(t), ["--classes", "Forest;forest"], "given twice"),
    "bad scale": (lambda t: _raster(t), ["--scale", "-3"], "--scale must be > 0"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exit_2_one_line_no_output(case, tmp_path, tiny_checkpoint, capsys):
    make, extra, message = BAD[case]
    src = make(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    args = ["-q", "classify", src, "--out", out_dir / "m.tif", "--checkpoint", tiny_checkpoint]
    if "--classes" not in extra:
        args += ["--classes", CLASSES]
    code, _, err = run(args + extra, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert list(out_dir.iterdir()) == []


def test_bad_resolution_is_refused_before_any_work(tmp_path, color_model, capsys):
    """The API says which values exist (the CLI's choice list does the same, exit 2)."""
    import senclip
    from senclip.core.errors import InputError

    src = _raster(tmp_path)
    calls = color_model.image.calls
    with pytest.raises(InputError, match="--resolution must be 'grid' or 'pixel', got 'metre'"):
        senclip.classify(src, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model, resolution="metre")
    assert color_model.image.calls == calls and not (tmp_path / "m.tif").exists()
    code, _, err = run(["classify", src, "--classes", CLASSES, "--out", tmp_path / "m.tif", "--resolution", "metre"],
                       capsys)
    assert code == 2 and "'metre' is not one of 'grid', 'pixel'" in err and not (tmp_path / "m.tif").exists()


def test_class_without_prompts(tmp_path, tiny_checkpoint, capsys):
    src = _raster(tmp_path)
    p = tmp_path / "p.json"
    p.write_text(json.dumps({"Forest": ["a forest"], "Sea": []}))
    code, _, err = run(["classify", src, "--prompts", p, "--out", tmp_path / "m.tif", "--checkpoint", tiny_checkpoint], capsys)
    assert code == 2 and "'Sea' has no prompts" in err
    p.write_text(json.dumps({"Forest": ["a forest"]}))
    code, _, err = run(["classify", src, "--prompts", p, "--classes", "Forest;Sea", "--out", tmp_path / "m.tif",
                        "--checkpoint", tiny_checkpoint], capsys)
    assert code == 2 and "'Sea'" in err and "no prompts in the prompt file" in err
    assert not (tmp_path / "m.tif").exists()


def test_corrupt_and_foreign_checkpoints(tmp_path, tiny_checkpoint, capsys):
    src = _raster(tmp_path)
    trunc = tmp_path / "trunc.ckpt"
    trunc.write_bytes(Path(tiny_checkpoint).read_bytes()[:5000])
    code, _, err = run(["classify", src, "--classes", CLASSES, "--checkpoint", trunc, "--out", tmp_path / "m.tif"], capsys)
    assert code == 2 and "trunc.ckpt" in err
    import torch

    foreign = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(8, 3, 3, 3), "fc.bias": torch.zeros(10)}, foreign)
    code, _, err = run(["classify", src, "--classes", CLASSES, "--checkpoint", foreign, "--out", tmp_path / "m.tif"], capsys)
    assert code == 2 and "--arch" in err
    assert not (tmp_path / "m.tif").exists()


def test_unwritable_output(tmp_path, tiny_checkpoint, capsys):
    src = _raster(tmp_path)
    code, _, err = run(["classify", src, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                        "--out", tmp_path / "no" / "such" / "dir" / "m.tif"], capsys)
    assert code == 2 and "does not exist" in err
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK):  # root ignores permissions: use a path under a regular file instead
            target = tmp_path / "in.tif" / "m.tif"
        else:
            target = ro / "m.tif"
        code, _, err = run(["classify", src, "--classes", CLASSES, "--checkpoint", tiny_checkpoint, "--out", target], capsys)
        assert code == 2 and "cannot write" in err
    finally:
        ro.chmod(0o700)


def test_existing_output_needs_overwrite(s2_scene, tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "m.tif").write_text("keep me")
    code, _, err = run(["classify", s2_scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                        "--out", tmp_path / "m.tif"], capsys)
    assert code == 2 and "--overwrite" in err
    assert (tmp_path / "m.tif").read_text() == "keep me"


def test_geographic_crs_is_handled_with_a_warning(tmp_path, tiny_checkpoint, capsys):
    src = write_s2(tmp_path / "geo.tif", crs="EPSG:4326")
    code, stdout, err = run(["-q", "classify", src, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                             "--out", tmp_path / "m.tif"], capsys)
    assert code == 0 and "geographic CRS" in err
    assert "km²" not in stdout  # no fake areas in degrees


def test_int8_onnx_backend(s2_scene, tmp_path, tiny_checkpoint, capsys):
    code, stdout, err = run(["-q", "classify", s2_scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                             "--backend", "onnx", "--int8", "--out", tmp_path / "m.tif"], capsys)
    assert code == 0, err
    assert "on onnx/cpu" in stdout
    code, _, err = run(["-q", "classify", s2_scene, "--classes", CLASSES, "--checkpoint", tiny_checkpoint,
                        "--int8", "--out", tmp_path / "n.tif"], capsys)
    assert code == 2 and "--backend onnx" in err and not (tmp_path / "n.tif").exists()


def test_demo_without_the_hub_fails_at_once_and_says_how_to_run_it(s2_scene, tmp_path, capsys, monkeypatch):
    import huggingface_hub

    import senclip.sentinel2.demo

    monkeypatch.setattr(senclip.sentinel2.demo, "fetch_demo_scene", lambda data_dir, **kw: s2_scene)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download",
                        lambda *a, **k: pytest.fail("no download may start for a name that does not resolve"))
    monkeypatch.setenv("SENCLIP_HF_ENDPOINT", "https://senclip-hub.invalid")
    code, _, err = run(["demo", "--out", tmp_path / "demo"], capsys)
    assert code == 2
    assert "does not resolve" in err and "MODEL=untrained-smoke" in err and "copy the weight file" in err
    assert "retry" not in err.lower() and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "demo" / "demo_classmap.tif").exists()
