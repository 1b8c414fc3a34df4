"""--overwrite replaces only what senclip wrote; everything else is refused and left untouched.

Through the API (what the plugin's worker calls), the CLI and the worker's request handler.
"""
from __future__ import annotations

import io
import json

import pytest
import rasterio
from s2data import write_s2

import senclip
from senclip.core import outputs
from senclip.cli.main import main
from senclip.core.errors import OutputError

CLASSES = "green meadow;blue water"


def snapshot(path):
    """Every file under ``path`` (or ``path`` itself) with its bytes: what must not change."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): p.read_bytes() for p in files}


@pytest.fixture
def thesis(tmp_path):
    d = tmp_path / "Documents"
    d.mkdir()
    (d / "thesis.docx").write_bytes(b"four years of work")
    (d / "figures").mkdir()
    (d / "figures" / "map.png").write_bytes(b"\x89PNG")
    return d


def _store_with_extra_file(tmp_path, color_model):
    store = senclip.embed(write_s2(tmp_path / "s.tif"), tmp_path / "store", loaded_model=color_model).path
    (store / "notes.txt").write_text("my notes about this scene")
    return store


def _foreign_meta(tmp_path, color_model):
    d = tmp_path / "other"
    d.mkdir()
    (d / "meta.json").write_text(json.dumps({"format": "someone-elses-tool"}))
    return d


@pytest.mark.parametrize("make", ["thesis", "extra file", "foreign meta.json", "a file"])
def test_embed_overwrite_refuses_what_senclip_did_not_write(tmp_path, thesis, color_model, make):
    target = {"thesis": lambda: thesis, "extra file": lambda: _store_with_extra_file(tmp_path, color_model),
              "foreign meta.json": lambda: _foreign_meta(tmp_path, color_model),
              "a file": lambda: thesis / "thesis.docx"}[make]()
    before = snapshot(target)
    scene = write_s2(tmp_path / "scene.tif")
    with pytest.raises(OutputError, match="not an embedding store senclip wrote.*nothing was touched"):
        senclip.embed(scene, target, loaded_model=color_model, overwrite=True)
    assert snapshot(target) == before
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temporaries either


def test_classify_save_embeddings_overwrite_refuses_a_foreign_folder_before_any_work(tmp_path, thesis, color_model):
    before = snapshot(thesis)
    calls = color_model.image.calls
    with pytest.raises(OutputError, match="not an embedding store senclip wrote"):
        senclip.classify(write_s2(tmp_path / "s.tif"), tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model,
                         save_embeddings=thesis, overwrite=True)
    assert snapshot(thesis) == before
    assert color_model.image.calls == calls and not (tmp_path / "m.tif").exists()


def test_foreign_geotiff_is_not_replaced(tmp_path, color_model):
    foreign = write_s2(tmp_path / "dem.tif")  # a GeoTIFF, but not a class map
    (tmp_path / "dem.qml").write_text("<qgis>my style</qgis>")
    before = {**snapshot(foreign), **snapshot(tmp_path / "dem.qml")}
    with pytest.raises(OutputError, match="not a class map senclip wrote"):
        senclip.classify(write_s2(tmp_path / "s.tif"), foreign, classes=CLASSES, loaded_model=color_model,
                         overwrite=True)
    assert {**snapshot(foreign), **snapshot(tmp_path / "dem.qml")} == before


def test_a_sidecar_without_its_map_is_not_replaced(tmp_path, color_model):
    (tmp_path / "m.qml").write_text("<qgis>someone's style</qgis>")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match="m.qml"):
            senclip.classify(write_s2(tmp_path / "s.tif"), tmp_path / "m.tif", classes=CLASSES,
                             loaded_model=color_model, overwrite=overwrite)
    assert (tmp_path / "m.qml").read_text() == "<qgis>someone's style</qgis>"


def test_a_folder_is_never_replaced_by_a_map(tmp_path, thesis, color_model):
    before = snapshot(thesis)
    with pytest.raises(OutputError, match="not a class map senclip wrote"):
        senclip.classify(write_s2(tmp_path / "s.tif"), thesis, classes=CLASSES, loaded_model=color_model,
                         overwrite=True)
    assert snapshot(thesis) == before


def test_senclip_outputs_are_replaced(tmp_path, color_model):
    scene = write_s2(tmp_path / "s.tif")
    store = senclip.embed(scene, tmp_path / "store", loaded_model=color_model).path
    (store / "meta.json").write_text((store / "meta.json").read_text().replace('"created"', '"old_created"'))
    senclip.embed(scene, store, loaded_model=color_model, overwrite=True)
    assert "old_created" not in (store / "meta.json").read_text()
    assert sorted(p.name for p in store.iterdir()) == ["embeddings.npy", "meta.json", "valid.npy"]

    senclip.classify_store(store, tmp_path / "m.tif", classes=CLASSES, loaded_model=color_model)
    res = senclip.classify_store(store, tmp_path / "m.tif", classes="blue water;green meadow",
                                 loaded_model=color_model, overwrite=True)
    with rasterio.open(res.path) as ds:
        assert json.loads(ds.tags()["SENCLIP_CLASSES"]) == ["blue water", "green meadow"]
    assert "blue water" in (tmp_path / "m.qml").read_text().split("green meadow")[0]
    # and an empty folder (made beforehand by the user) loses nothing when it becomes a store
    (tmp_path / "empty").mkdir()
    senclip.embed(scene, tmp_path / "empty", loaded_model=color_model, overwrite=True)
    assert outputs.is_senclip_store(tmp_path / "empty")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_cli_embed_overwrite_on_a_foreign_folder_is_exit_2_one_line(tmp_path, thesis, tiny_checkpoint, capsys):
    before = snapshot(thesis)
    with pytest.raises(SystemExit) as e:
        main(["-q", "embed", str(write_s2(tmp_path / "s.tif")), "--out", str(thesis), "--overwrite",
              "--checkpoint", str(tiny_checkpoint)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Documents" in err and "nothing was touched" in err
    assert snapshot(thesis) == before


def test_worker_embed_request_with_overwrite_is_refused(tmp_path, thesis, tiny_checkpoint):
    """The Processing algorithm sends overwrite=True for every embed; the worker must refuse too."""
    from senclip.worker import Channel, State, handle

    before = snapshot(thesis)
    out = io.StringIO()
    handle({"id": 3, "op": "embed", "args": {"input": str(write_s2(tmp_path / "s.tif")), "out": str(thesis),
                                             "overwrite": True, "checkpoint": str(tiny_checkpoint)}},
           Channel(out), State())
    event = json.loads(out.getvalue().splitlines()[-1])
    assert (event["event"], event["type"], event["exit_code"]) == ("error", "OutputError", 2)
    assert snapshot(thesis) == before


def test_onnx_export_never_replaces_a_foreign_folder(tmp_path, thesis):
    from senclip.models.onnx_export import export_onnx
    from senclip.models.registry import Preprocess

    before = snapshot(thesis)
    with pytest.raises(OutputError, match="not an ONNX export senclip wrote"):
        export_onnx(None, thesis, preprocess=Preprocess(), model_id="x", arch="x", checksum="x", overwrite=True)
    assert snapshot(thesis) == before


def test_staged_publishes_whole_or_not_at_all(tmp_path):
    target = tmp_path / "f.bin"
    with outputs.Staged(target) as tmp:
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    with pytest.raises(RuntimeError):
        with outputs.Staged(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    folder = tmp_path / "d"
    for content in (b"1", b"2"):
        st = outputs.Staged(folder, folder=True)
        (st.tmp / "x").write_bytes(content)
        st.commit()
    assert (folder / "x").read_bytes() == b"2" and sorted(p.name for p in tmp_path.iterdir()) == ["d", "f.bin"]


def test_published_together_removes_exactly_what_the_run_published(tmp_path):
    """A run publishing several outputs: a failure after the first removes that one again, and
    nothing else (not the user's file beside it, not a file the run never recorded)."""
    from senclip.core.outputs import published_together

    mine, theirs = tmp_path / "map.tif", tmp_path / "map.qml"
    theirs.write_text("the user's style")
    with pytest.raises(RuntimeError):
        with published_together() as published:
            mine.write_text("map")
            published(mine)
            raise RuntimeError("the second output failed")
    assert not mine.exists() and theirs.read_text() == "the user's style"
    with published_together() as published:  # success keeps everything
        mine.write_text("map")
        published(mine)
    assert mine.exists()
