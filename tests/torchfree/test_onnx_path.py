"""Everything downstream of the weights, without torch: the export built from a released checkpoint
(agreeing with the torch backend's embeddings), classify, embed, re-prompting from a store,
--transductive, few-shot, a region map on Dask, --precision auto, the CLI and the dock's worker.
The conftest fails any of these that tries to import torch or open_clip."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from torchfree_env import HEAVY, REPO
from make_released import PROMPTS, chips
from s2data import BLUE_POINTS, GREEN_POINTS, write_examples, write_s2
from senclip.api import classify, classify_store, embed
from senclip.models.loading import UNTRAINED_NUMPY_CHECKSUM, load_model

CLASSES = ["green meadow", "blue lake"]
ENV = {"PYTHONPATH": os.pathsep.join(str(REPO / p) for p in ("backend", "tests"))}


class Infos:
    """A Feedback that keeps the info lines."""

    def __init__(self):
        from senclip.core.feedback import Feedback

        self.fb, self.lines = Feedback(), []
        self.fb.info = self.lines.append


@pytest.mark.parametrize("name", ["vit.ckpt", "rn.ckpt"])
def test_export_from_a_release_file_agrees_with_torch(released, name):
    """The export built without torch encodes chips and tricky prompts as the torch backend did."""
    lm = load_model(checkpoint=released[name], backend="onnx", device="cpu", precision="fp32")
    assert "torch" not in lm.image.meta["exporter"] and lm.backend == "onnx"
    with np.load(released[name + ".emb.npz"]) as ref:
        assert (lm.image.encode_chips(chips()) * ref["image"]).sum(1).min() >= 0.99999
        assert (lm.text.encode_texts(PROMPTS) * ref["text"]).sum(1).min() >= 0.99999


@pytest.mark.parametrize("name", ["vit_legacy.pt", "vit.safetensors", "vit_lightning.pth"])
def test_every_released_form_loads_into_onnx(released, name):
    lm = load_model(checkpoint=released[name], backend="onnx", device="cpu", precision="fp32")
    with np.load(released["vit.ckpt.emb.npz"]) as ref:  # the same weights as vit.ckpt
        assert (lm.text.encode_texts(PROMPTS) * ref["text"]).sum(1).min() >= 0.99999


@pytest.fixture
def scene_store(released, tmp_path):
    """A scene classified with the ONNX backend, its embeddings kept as a store."""
    scene = write_s2(tmp_path / "scene.tif")
    res = classify(scene, tmp_path / "map.tif", classes=CLASSES, checkpoint=released["vit.ckpt"], backend="onnx",
                   device="cpu", save_embeddings=tmp_path / "store")
    return scene, tmp_path / "store", res


def test_classify_embed_and_auto_precision(scene_store, released, tmp_path):
    scene, store, res = scene_store
    assert res.backend == "onnx" and sum(res.counts.values()) > 0 and res.path.is_file()
    assert res.precision["engine"] in ("onnxruntime", "openvino") and res.precision["reason"].startswith("auto")
    with rasterio.open(res.path) as ds:
        assert ds.count == 3 and json.loads(ds.tags()["SENCLIP_CLASSES"]) == CLASSES
    out = embed(scene, tmp_path / "store2", checkpoint=released["vit.ckpt"], backend="onnx", device="cpu",
                precision="fp32")
    a, b = np.load(store / "embeddings.npy"), np.load(out.path / "embeddings.npy")
    assert a.shape == b.shape and np.allclose(a.astype(np.float32), b.astype(np.float32), atol=2e-3)


def test_reprompt_from_a_store_loads_only_the_text_graph(scene_store, tmp_path):
    _, store, first = scene_store
    log = Infos()
    res = classify_store(store, tmp_path / "re.tif", classes=["forest", "water", "field"], feedback=log.fb)
    assert any("text encoder of checkpoint:vit.ckpt from its ONNX export" in line for line in log.lines)
    assert not any("precision auto" in line for line in log.lines)  # no image encoder was loaded
    assert res.classes == ["forest", "water", "field"] and sum(res.counts.values()) == sum(first.counts.values())
    trans = classify_store(store, tmp_path / "tr.tif", classes=CLASSES, transductive=True)
    assert trans.transductive and sum(trans.counts.values()) == sum(first.counts.values())


def test_reprompt_makes_a_missing_text_graph_without_torch(scene_store, tmp_path, senclip_home):
    """A store whose export is gone (a cleared cache, a store from another machine): the export is
    made again from the store's checkpoint, torch-free, and only its text graph is loaded."""
    import shutil

    _, store, first = scene_store
    shutil.rmtree(senclip_home / "onnx")
    log = Infos()
    res = classify_store(store, tmp_path / "re.tif", classes=["forest", "water"], feedback=log.fb)
    assert any("exporting it once" in line for line in log.lines), log.lines
    assert any("from its ONNX export" in line for line in log.lines) and res.backend == "onnx"
    assert sum(res.counts.values()) == sum(first.counts.values())


def test_fewshot_from_a_store(scene_store, tmp_path):
    from senclip.tools.fewshot import fewshot

    _, store, _ = scene_store
    ex = write_examples(tmp_path / "examples.geojson", GREEN_POINTS + BLUE_POINTS)
    res = fewshot(store, tmp_path / "fs.tif", examples=ex, classes="Forest", backend="onnx", device="cpu")
    assert set(res.map.classes) == {"Forest", "blue", "green"} and res.method
    assert res.map.path.is_file()


def test_region_map_on_dask(released, tmp_path):
    from senclip.region import map_region

    load_model(checkpoint=released["vit.ckpt"], backend="onnx", device="cpu")  # the export, made once
    scenes = [write_s2(tmp_path / f"s{i}.tif") for i in range(2)]
    res = map_region(scenes, tmp_path / "region", workers=1, threads_per_worker=1, dashboard=False, retries=0,
                     classes=";".join(CLASSES), checkpoint=str(released["vit.ckpt"]), backend="onnx", device="cpu")
    assert (res.done, res.failed) == (2, 0)
    assert all((tmp_path / "region" / "scenes" / f"s{i}.tif").is_file() for i in range(2))


def test_cli_export_onnx(released, tmp_path):
    cli = "from senclip.cli.main import main; main(sys.argv[1:])"
    proc = run_probed(cli, "models", "export-onnx", "--checkpoint", released["rn.ckpt"], "--out", tmp_path / "x",
                      "--int8")
    assert proc.returncode == 0, proc.stderr
    lm = load_model(checkpoint=released["rn.ckpt"], onnx_dir=tmp_path / "x", backend="onnx", device="cpu",
                    precision="int8")
    assert lm.precision == "int8" and lm.model_id == "checkpoint:rn.ckpt"


def test_untrained_smoke_model_without_torch():
    lm = load_model("untrained-smoke", backend="onnx", device="cpu", precision="fp32")
    assert lm.untrained and lm.checksum == UNTRAINED_NUMPY_CHECKSUM and lm.arch == "ViT-B-32-quickgelu"
    emb = lm.image.encode_chips(chips())
    assert emb.shape == (4, 512) and np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-4)
    assert lm.text.encode_texts(["Forest"]).shape == (1, 512)


PROBE = (
    "import sys\n"
    f"HEAVY = {HEAVY!r}\n"
    "sys.addaudithook(lambda e, a: e == 'import' and str(a[0]).split('.')[0] in HEAVY "
    "and sys.stderr.write(f'HEAVY-IMPORT {a[0]}\\n'))\n"
)


def run_probed(code: str, *args, stdin: str | None = None):
    """``code`` in a fresh interpreter of this venv that reports every torch/open_clip import attempt."""
    proc = subprocess.run([sys.executable, "-c", PROBE + code, *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, **ENV))
    assert "HEAVY-IMPORT" not in proc.stderr, proc.stderr
    return proc


def test_cli_classify_and_reprompt(scene_store, tmp_path):
    scene, store, _ = scene_store
    cli = "from senclip.cli.main import main; main(sys.argv[1:])"
    proc = run_probed(cli, "-q", "classify", "--embeddings", store, "--classes", "forest;water;field",
                      "--out", tmp_path / "cli.tif")
    assert proc.returncode == 0 and (tmp_path / "cli.tif").is_file(), proc.stderr
    proc = run_probed(cli, "models", "export-onnx", "--checkpoint", scene_store[0].parent / "missing.ckpt")
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_dock_worker_reprompts_from_a_store(scene_store, tmp_path):
    _, store, _ = scene_store
    requests = [{"id": 1, "op": "load_store", "args": {"store": str(store), "backend": "onnx", "device": "cpu"}},
                {"id": 2, "op": "reclassify", "args": {"classes": ["forest", "water"], "out": str(tmp_path / "d.tif")}},
                {"id": 3, "op": "shutdown"}]
    proc = run_probed("sys.argv[1:] = ['--persistent']\nfrom senclip.worker import main\nsys.exit(main())",
                      stdin="".join(json.dumps(r) + "\n" for r in requests))
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    results = {e["id"]: e for e in events if e.get("event") in ("result", "error")}
    assert results[1]["event"] == "result" and results[2]["event"] == "result", proc.stdout[-2000:]
    assert results[2]["result"]["classes"] == ["forest", "water"] and Path(results[2]["result"]["path"]).is_file()
    infos = [e["message"] for e in events if e.get("event") == "info"]
    assert any("from its ONNX export" in m for m in infos) and not any("precision auto" in m for m in infos)


def test_cli_classifies_a_scene_with_the_default_backend(scene_store, released, tmp_path):
    """The light install maps without a flag: --backend's default (auto) picks ONNX Runtime when torch
    is absent (with the old default, torch, this run stopped asking for PyTorch)."""
    scene, _, _ = scene_store
    cli = "from senclip.cli.main import main; main(sys.argv[1:])"
    proc = run_probed(cli, "classify", str(scene), "--classes", "forest;water", "--checkpoint",
                      released["vit.ckpt"], "--precision", "fp32", "--out", tmp_path / "default.tif")
    assert proc.returncode == 0 and (tmp_path / "default.tif").is_file(), proc.stderr[-2000:]
    with rasterio.open(tmp_path / "default.tif") as ds:
        assert ds.tags()["SENCLIP_BACKEND"] == "onnx"
    assert "torch is not installed, so ONNX Runtime runs the model" in proc.stderr
