"""The Python API; the CLI and the QGIS worker are thin layers over these three functions.

``embed`` encodes a scene once into an embedding store; ``classify_store`` turns a store and
prompts into a class map (only the text encoder runs); ``classify`` does both in one go.

May import: senclip.core, senclip.sentinel2, senclip.models, senclip.embedding, senclip.zeroshot, senclip.maps.
"""
from __future__ import annotations

import datetime as _dt
import platform
import tempfile
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from senclip._version import __version__
from senclip.maps.classmap import check_resolution, write_grid, write_pixels
from senclip.sentinel2.cloudmask import DEFAULT_MODE as DEFAULT_CLOUD_MASK
from senclip.core.errors import InputError, StoreMismatchError
from senclip.core.feedback import Feedback
from senclip.maps.geotiff import CLOUD_VALUE, ClassMapWriter
from senclip.embedding.pipeline import encode_scene, load_mask_geometries
from senclip.zeroshot.prompts import build_prompt_set
from senclip.sentinel2.scene import DEFAULT_MAX_REFLECTANCE, open_scene
from senclip.core.outputs import all_or_nothing, prepare_output
from senclip.embedding.store import EmbeddingStore, StoreWriter
from senclip.embedding.tiling import DEFAULT_MIN_VALID, DEFAULT_TILE, TileGrid
from senclip.zeroshot.head import calibrate_probabilities, class_embeddings, probabilities

STORE_BLOCK_ROWS = 32  # grid rows of embeddings read at once (11 MB for a 10980 px tile at stride 32)
UNTRAINED_NOTE = "RANDOM (untrained) weights: this map only checks the pipeline and means nothing"


@dataclass
class EmbedResult:
    path: Path
    chips: int
    grid: dict
    model: dict
    backend: str
    device: str
    precision: dict | None = None  # how the image encoder ran: precision, engine, why
    cloud_mask: dict | None = None  # which mask was used (or why none) and the share it masked


@dataclass
class ClassifyResult:
    path: Path
    classes: list[str]
    counts: dict[str, int]
    area_m2: dict[str, float] | None
    mean_confidence: dict[str, float]
    model: dict
    backend: str
    device: str
    unclassified: int = 0
    warnings: list[str] = field(default_factory=list)
    precision: dict | None = None  # how the store's image embeddings were computed
    cloud_masked: int = 0  # output pixels of the cloud / shadow class (CLOUD_VALUE)
    cloud_mask: dict | None = None  # which mask the embeddings were made with, and its masked share
    transductive: dict | None = None  # the transductive solver's record, when --transductive ran

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["path"] = str(self.path)
        return d


def _versions(backend: str) -> dict:
    import rasterio

    v = {"senclip": __version__, "python": platform.python_version(), "numpy": np.__version__,
         "rasterio": rasterio.__version__, "gdal": rasterio.__gdal_version__}
    try:
        if backend == "onnx":
            import onnxruntime

            v["onnxruntime"] = onnxruntime.__version__
        else:
            import open_clip
            import torch

            v["torch"], v["open_clip"] = torch.__version__, open_clip.__version__
    except ImportError:
        pass
    return v


def _load(model, checkpoint, arch, backend, device, offline, feedback, loaded, int8=False, precision="auto"):
    if loaded is not None:
        return loaded
    from senclip.models.loading import load_model

    if int8:  # the --int8 flag of earlier versions
        warnings.warn("int8=True / --int8 is deprecated: use precision='int8' / --precision int8", DeprecationWarning,
                      stacklevel=3)
    return load_model(model=model, checkpoint=checkpoint, arch=arch, backend=backend, device=device,
                      offline=offline, precision="int8" if int8 else precision, feedback=feedback)


def _precision_tag(meta: dict) -> dict:
    """What the store's image embeddings were computed in (stores from before --precision: fp32)."""
    return meta.get("precision") or {"precision": "fp32", "engine": meta.get("backend", ""), "reason": "not recorded"}


def embed(input, out, *, model=None, checkpoint=None, arch=None, backend: str = "auto", device: str = "auto",
          precision: str = "auto", int8: bool = False,
          tile: int = DEFAULT_TILE, stride: int | None = None, batch_size: int = 32, bands=None, scale="auto",
          offset="auto", max_reflectance: float = DEFAULT_MAX_REFLECTANCE, stretch: str = "fixed",
          min_valid: float = DEFAULT_MIN_VALID, bounds=None, mask=None, cloud_mask=DEFAULT_CLOUD_MASK,
          mask_snow: bool = False, scl=None, product_files=None, overwrite: bool = False, offline: bool = False,
          feedback: Feedback | None = None, loaded_model=None) -> EmbedResult:
    """Encode ``input`` (raster or band folder) into an embedding store folder ``out``.

    ``cloud_mask`` (auto | scl | s2cloudless | none | a raster path) is computed first, kept in the
    store (:mod:`senclip.sentinel2.cloudmask`), and removes masked pixels before chips are cut. ``scl`` and
    ``product_files`` (a :class:`senclip.sentinel2.productfiles.ProductFiles`) name the product's files that
    do not sit beside the input, e.g. a STAC item's SCL, L1C bands and sun angles."""
    from senclip.sentinel2.cloudmask import plan_mask
    feedback = feedback or Feedback()
    if not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"--batch-size must be a positive integer, got {batch_size!r}")
    if not 0 < min_valid <= 1:
        raise InputError(f"--min-valid must be in (0, 1], got {min_valid!r}")
    prepare_output(out, overwrite, kind="store")
    with open_scene(input, bands=bands, scale=scale, offset=offset, max_reflectance=max_reflectance,
                    stretch=stretch, bounds=bounds) as scene:
        grid = TileGrid.create(scene.width, scene.height, tile, stride)
        geoms = load_mask_geometries(mask, scene.crs) if mask else None
        cloud_plan = plan_mask(cloud_mask, scene, mask_snow=mask_snow, scl=scl, product_files=product_files)
        if cloud_plan.method == "none":
            feedback.info(f"cloud mask: {cloud_plan.note}")
        lm = _load(model, checkpoint, arch, backend, device, offline, feedback, loaded_model, int8, precision)
        feedback.info(f"model {lm.model_id} on {lm.backend}/{lm.device}, {lm.precision} on {lm.engine or lm.backend}"
                      f"{f' ({lm.precision_reason})' if lm.precision_reason else ''}; {grid.rows}×{grid.cols} tiles "
                      f"of {grid.tile} px, stride {grid.stride}")
        if lm.untrained:
            feedback.warning(UNTRAINED_NOTE)
        meta = {
            "model": lm.record(), "checkpoint_path": str(Path(checkpoint).resolve()) if checkpoint else None,
            "tiling": dict(grid.to_dict(), min_valid=min_valid), "radiometry": scene.radiometry.to_dict(),
            "grid_transform": list(grid.transform(scene.transform))[:6], "crs": scene.crs.to_wkt(),
            "area_transform": list(scene.transform)[:6], "source": scene.fingerprint(),
            "mask": str(Path(mask).resolve()) if mask else None, "backend": lm.backend, "device": lm.device,
            "precision": lm.precision_record(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions(lm.backend),
        }
        with all_or_nothing(lambda: StoreWriter(out, rows=grid.rows, cols=grid.cols, dim=lm.embed_dim, meta=meta,
                                                overwrite=overwrite)) as writer:
            n = _encode_masked(scene, grid, lm, writer, cloud_plan, batch_size=batch_size, min_valid=min_valid,
                               geoms=geoms, feedback=feedback)
            if n == 0 and not writer.meta["cloud_mask"].get("cells"):  # all cloud is an answer, all nodata is not
                raise InputError(
                    f"no tile of {Path(input).name} has at least {min_valid:.0%} valid pixels (all nodata"
                    f"{' or outside the mask' if mask else ''}); check the input, its nodata value or the mask")
            path = writer.commit()
    return EmbedResult(path, n, grid.to_dict(), lm.record(), lm.backend, lm.device,
                       precision=lm.precision_record(), cloud_mask=writer.meta.get("cloud_mask"))



def _encode_masked(scene, grid, lm, writer, cloud_plan, *, batch_size, min_valid, geoms, feedback) -> int:
    """Build the cloud mask into the store being written (once per scene), then encode the chips
    with masked pixels taken out; the store keeps the mask file and the rejected cells."""
    from senclip.sentinel2.cloudmask import CELLS_FILE, MASK_FILE, MaskReader, build_mask

    built = build_mask(cloud_plan, scene, writer.tmp / MASK_FILE, feedback=feedback)
    writer.meta["cloud_mask"] = built.record if built else cloud_plan.record()
    if built is None:
        return encode_scene(scene, grid, lm.image, writer, batch_size=batch_size, min_valid=min_valid,
                            geoms=geoms, feedback=feedback)
    cells = np.zeros(grid.shape, dtype=bool)
    with MaskReader(built.path) as reader:
        n = encode_scene(scene, grid, lm.image, writer, batch_size=batch_size, min_valid=min_valid,
                         geoms=geoms, feedback=feedback, cloud=reader, cloud_cells=cells)
    np.save(writer.tmp / CELLS_FILE, cells)
    writer.meta["cloud_mask"]["cells"] = int(cells.sum())
    return n


def check_transductive(transductive: bool, calibrate: str) -> None:
    """--transductive and a --calibrate other than none are refused together: both re-weigh the
    classes over the whole scene (the transductive solver learns the class shares itself)."""
    if transductive and calibrate != "none":
        raise InputError(f"--transductive and --calibrate {calibrate} both re-weigh classes over the whole scene; "
                         "use one of them")


def store_probabilities(st: EmbeddingStore, class_emb: np.ndarray, *, calibrate: str = "none",
                        transductive: bool = False, spatial: str = "8", support=None,
                        feedback: Feedback | None = None, record: dict | None = None,
                        bias: np.ndarray | None = None) -> np.ndarray:
    """(rows, cols, K) class probabilities of every grid cell (0 where invalid), reading the store in
    row blocks so that only K values per cell, never the embeddings, are held.

    ``transductive``: the whole scene at once instead (:mod:`senclip.zeroshot.transductive_map`: the
    realistic solver plus ``spatial`` grid edges; ``support`` = labelled (rows, cols, labels)); its
    record (method, params, absent classes, timings) goes into ``record``."""
    feedback = feedback or Feedback()
    if transductive:
        check_transductive(transductive, calibrate)
        from senclip.zeroshot.transductive_map import store_transduce

        probs, rec = store_transduce(st, class_emb, spatial=spatial, support=support, bias=bias, feedback=feedback)
        if record is not None:
            record.update(rec)
        return probs
    rows, cols = st.valid.shape
    probs = np.zeros((rows, cols, len(class_emb)), dtype=np.float32)
    for r0, r1, emb in st.iter_rows(STORE_BLOCK_ROWS):
        feedback.check()
        ok = st.valid[r0:r1]
        probs[r0:r1][ok] = probabilities(emb[ok].astype(np.float32), class_emb, bias=bias)
    if calibrate != "none":  # transductive: needs every cell's probabilities, which are at hand
        probs[st.valid] = calibrate_probabilities(probs[st.valid], calibrate)
    return probs


def classify_store(store, out, *, classes=None, prompts=None, prompt_style: str = "ground",
                   resolution: str = "grid", calibrate: str = "none", transductive: bool = False,
                   spatial: str = "8", model=None, checkpoint=None, arch=None,
                   backend: str = "auto", device: str = "auto", input=None, overwrite: bool = False,
                   offline: bool = False, feedback: Feedback | None = None, loaded_model=None,
                   extra_tags: dict | None = None) -> ClassifyResult:
    """Class map from an embedding store: prompts are encoded, images are not."""
    feedback = feedback or Feedback()
    check_resolution(resolution)
    prompt_set = build_prompt_set(classes, prompts=prompts, style=prompt_style)
    names = list(prompt_set)
    if len(names) >= CLOUD_VALUE:
        raise InputError(f"{len(names)} classes are too many for a uint8 class map; use at most {CLOUD_VALUE - 1}")
    prepare_output(out, overwrite)
    st = store if isinstance(store, EmbeddingStore) else EmbeddingStore(store)
    meta = st.meta
    lm = loaded_model
    if lm is None and checkpoint is None and model in (None, meta["model"]["model_id"]):
        from senclip.models.loading import store_text_model  # re-prompting needs the text encoder alone

        lm = store_text_model(meta, offline=offline, feedback=feedback)
    if model is None and checkpoint is None and lm is None:
        model, checkpoint = (None, meta.get("checkpoint_path")) if meta["model"]["model_id"].startswith("checkpoint:") \
            else (meta["model"]["model_id"], None)
    lm = _load(model, checkpoint, arch, backend, device, offline, feedback, lm, precision="fp32")
    st.check_model(lm.record())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cls_emb = class_embeddings(lm.text, prompt_set)
    for w in caught:
        feedback.warning(str(w.message))

    return write_class_map(st, out, names, cls_emb, model_record=lm.record(), prompts=prompt_set,
                           prompt_style=prompt_style if prompts is None else "file", resolution=resolution,
                           calibrate=calibrate, transductive=transductive, spatial=spatial, input=input,
                           overwrite=overwrite, feedback=feedback,
                           text_backend=f"{lm.backend}/{lm.device}", extra_tags=extra_tags,
                           warnings_=[str(w.message) for w in caught])


def write_class_map(st: EmbeddingStore, out, names: list[str], cls_emb: np.ndarray, *, model_record: dict,
                    prompts: dict | None, prompt_style: str, resolution: str = "grid", calibrate: str = "none",
                    transductive: bool = False, spatial: str = "8", support=None,
                    input=None, overwrite: bool = False, feedback: Feedback | None = None,
                    text_backend: str = "", extra_tags: dict | None = None,
                    warnings_: list[str] | None = None, bias: np.ndarray | None = None) -> ClassifyResult:
    """Class map of a store for given class vectors (K, D): text embeddings, or the few-shot
    classifier's (:mod:`senclip.tools.fewshot`), which need no text encoder at all. ``transductive``
    (with ``spatial`` edges and labelled ``support`` cells) solves the whole scene at once."""
    feedback = feedback or Feedback()
    meta = st.meta
    trans_record: dict = {}
    probs = store_probabilities(st, cls_emb, calibrate=calibrate, transductive=transductive, spatial=spatial,
                                support=support, feedback=feedback, record=trans_record, bias=bias)
    trans_record = _named_absent(trans_record, names) if transductive else None
    rows, cols = st.valid.shape

    from affine import Affine
    from rasterio.crs import CRS

    crs = CRS.from_wkt(meta["crs"])
    tl = meta["tiling"]
    grid = TileGrid(tl["width"], tl["height"], tl["tile"], tl["stride"])
    area_t = Affine(*meta["area_transform"])
    tags = _map_tags(meta, names, prompts, prompt_style, model_record, resolution=resolution, calibrate=calibrate,
                     text_backend=text_backend, transductive=trans_record or "off")
    from senclip.sentinel2.cloudmask import store_mask

    cloud_record = meta.get("cloud_mask")
    mask_file, cloud_cells = store_mask(st.path)
    if cloud_record:
        tags["SENCLIP_CLOUD_MASK"] = cloud_record
    tags.update(extra_tags or {})

    if resolution == "grid":
        transform, width, height = Affine(*meta["grid_transform"]), cols, rows
    else:
        transform, width, height = area_t, grid.width, grid.height
    with all_or_nothing(lambda: ClassMapWriter(out, width=width, height=height, transform=transform, crs=crs,
                                               classes=names, tags=tags, overwrite=overwrite,
                                               cloud=cloud_cells is not None)) as writer:
        if resolution == "grid":
            write_grid(writer, probs, st.valid, feedback, cloud=cloud_cells)
        else:
            _write_pixel_map(writer, probs, st.valid, grid, meta, input, mask_file, cloud_cells, feedback)
        path = writer.commit()

    px_area = abs(transform.a * transform.e - transform.b * transform.d)
    metric = crs.is_projected and (crs.linear_units or "").lower() in ("metre", "meter", "m")
    counts = {n: int(writer.counts[i + 1]) for i, n in enumerate(names)}
    conf = {n: (float(writer.conf_sum[i + 1] / writer.counts[i + 1] / 100) if writer.counts[i + 1] else 0.0)
            for i, n in enumerate(names)}
    return ClassifyResult(
        path=path, classes=names, counts=counts,
        area_m2={n: c * px_area for n, c in counts.items()} if metric else None,
        mean_confidence=conf, model=model_record, backend=text_backend.split("/")[0] or meta.get("backend", ""),
        device=text_backend.split("/")[-1] or meta.get("device", ""),
        unclassified=int(writer.counts[0]), warnings=list(warnings_ or []),
        precision=_precision_tag(meta), cloud_masked=writer.cloud_count, cloud_mask=cloud_record,
        transductive=trans_record)


def _named_absent(record: dict, names: list[str]) -> dict:
    """The solver's record with the name of each class it found absent (they stay classes of the map,
    in its legend and colour table)."""
    from senclip.zeroshot.transductive import name_absent

    return name_absent(record, names)


def _map_tags(meta: dict, names, prompts, prompt_style, model_record: dict, *, resolution: str, calibrate: str,
              text_backend: str, transductive) -> dict:
    """The run record every class map carries (GeoTIFF tags): classes, prompts, model, tiling, engines."""
    tags = {
        "SENCLIP_VERSION": __version__, "SENCLIP_CLASSES": names, "SENCLIP_PROMPTS": prompts or {},
        "SENCLIP_PROMPT_STYLE": prompt_style,
        "SENCLIP_MODEL": model_record.get("model_id"), "SENCLIP_ARCH": model_record.get("arch"),
        "SENCLIP_CHECKSUM_SHA256": model_record.get("checksum"),
        "SENCLIP_TILING": dict(meta["tiling"], resolution=resolution), "SENCLIP_CALIBRATE": calibrate,
        "SENCLIP_BACKEND": meta.get("backend", ""), "SENCLIP_DEVICE": meta.get("device", ""),
        "SENCLIP_RADIOMETRY": meta.get("radiometry"), "SENCLIP_SOURCE": meta.get("source", {}).get("path", ""),
        "SENCLIP_VERSIONS": meta.get("versions", {}), "SENCLIP_TEXT_BACKEND": text_backend,
        "SENCLIP_PRECISION": _precision_tag(meta), "SENCLIP_TRANSDUCTIVE": transductive,
    }
    if model_record.get("untrained") or meta["model"].get("untrained"):
        tags["SENCLIP_WARNING"] = UNTRAINED_NOTE
    return tags


def _write_pixel_map(writer, probs, valid, grid, meta, input, mask_file, cloud_cells, feedback) -> None:
    """Pixel-resolution output: input validity re-read from the input, clouds from the store's mask."""
    from senclip.sentinel2.cloudmask import MaskReader

    pixel_valid = _pixel_validity(meta, input)
    reader = MaskReader(mask_file) if mask_file is not None else None
    pixel_cloud = (lambda y0, h: reader.read(y0, 0, h, grid.width)) if reader is not None else None
    try:
        write_pixels(writer, probs, valid, grid, pixel_valid=pixel_valid, feedback=feedback,
                     cloud_cells=cloud_cells, pixel_cloud=pixel_cloud)
    finally:
        if pixel_valid is not None:
            pixel_valid.close()
        if reader is not None:
            reader.close()


class _PixelValidity:
    """Re-reads input validity (nodata, mask polygons) row block by row block for pixel output."""

    def __init__(self, scene, geoms) -> None:
        self.scene, self.geoms = scene, geoms

    def __call__(self, y0: int, h: int) -> np.ndarray:
        from senclip.embedding.pipeline import inside_mask

        _, valid = self.scene.read(y0, 0, h, self.scene.width)
        return inside_mask(self.scene, valid, y0, 0, self.geoms)

    def close(self) -> None:
        self.scene.close()


def _pixel_validity(meta: dict, input) -> _PixelValidity | None:
    src = input or meta.get("source", {}).get("path")
    if not src or not Path(src).exists():
        return None
    rad = meta["radiometry"]
    scene = open_scene(src, bands=",".join(meta["source"]["bands"]),
                       scale="auto" if rad["passthrough_8bit"] else rad["scale"], offset=rad["offset"],
                       max_reflectance=rad["max_reflectance"], area=meta["source"]["area"])
    geoms = load_mask_geometries(meta["mask"], scene.crs) if meta.get("mask") else None
    return _PixelValidity(scene, geoms)


def classify(input=None, out=None, *, classes=None, prompts=None, prompt_style: str = "ground",
             embeddings=None, save_embeddings=None, resolution: str = "grid", calibrate: str = "none",
             transductive: bool = False, spatial: str = "8", model=None, checkpoint=None, arch=None, backend: str = "auto", device: str = "auto",
             precision: str = "auto", int8: bool = False, tile: int = DEFAULT_TILE, stride: int | None = None, batch_size: int = 32, bands=None, scale="auto",
             offset="auto", max_reflectance: float = DEFAULT_MAX_REFLECTANCE, stretch: str = "fixed",
             min_valid: float = DEFAULT_MIN_VALID, bounds=None, mask=None, cloud_mask=DEFAULT_CLOUD_MASK,
             mask_snow: bool = False, scl=None, product_files=None, overwrite: bool = False,
             offline: bool = False, feedback: Feedback | None = None, loaded_model=None) -> ClassifyResult:
    """Scene (or an existing store, ``embeddings=``) + classes/prompts → class-map GeoTIFF ``out``."""
    feedback = feedback or Feedback()
    if out is None:
        raise InputError("no output path given; pass --out map.tif")
    check_resolution(resolution)
    build_prompt_set(classes, prompts=prompts, style=prompt_style)  # fail on bad prompts before encoding
    prepare_output(out, overwrite)
    if save_embeddings is not None:
        prepare_output(save_embeddings, overwrite, kind="store")
    check_transductive(transductive, calibrate)
    common = dict(classes=classes, prompts=prompts, prompt_style=prompt_style, resolution=resolution,
                  calibrate=calibrate, transductive=transductive, spatial=spatial, backend=backend, device=device, input=input, overwrite=overwrite,
                  offline=offline, feedback=feedback)
    if embeddings is not None:
        st = EmbeddingStore(embeddings)
        if input is not None:
            with open_scene(input, bands=bands, scale=scale, offset=offset, max_reflectance=max_reflectance,
                            bounds=bounds) as scene:
                fp, mine = scene.fingerprint(), st.meta.get("source", {})
                if (fp["width"], fp["height"], fp["transform"]) != (mine.get("width"), mine.get("height"), mine.get("transform")):
                    raise StoreMismatchError(
                        f"embedding store {Path(embeddings).name} was made from {mine.get('path')}, which is not on the "
                        f"grid of {input}; leave out INPUT or re-run 'senclip embed' for this input")
        return classify_store(st, out, model=model, checkpoint=checkpoint, arch=arch, loaded_model=loaded_model, **common)
    if input is None:
        raise InputError("no input given; pass a Sentinel-2 raster or band folder (or --embeddings STORE)")
    # Check the input before a model loads (seconds, maybe a download) so bad input fails fast.
    with open_scene(input, bands=bands, scale=scale, offset=offset, max_reflectance=max_reflectance,
                    stretch=stretch, bounds=bounds) as scene:
        TileGrid.create(scene.width, scene.height, tile, stride)
        if mask:
            load_mask_geometries(mask, scene.crs)
        from senclip.sentinel2.cloudmask import plan_mask

        plan_mask(cloud_mask, scene, mask_snow=mask_snow, scl=scl, product_files=product_files)  # an impossible --cloud-mask fails here
    lm = _load(model, checkpoint, arch, backend, device, offline, feedback, loaded_model, int8, precision)
    emb_opts = dict(tile=tile, stride=stride, batch_size=batch_size, bands=bands, scale=scale, offset=offset,
                    max_reflectance=max_reflectance, stretch=stretch, min_valid=min_valid, bounds=bounds, mask=mask,
                    cloud_mask=cloud_mask, mask_snow=mask_snow, scl=scl, product_files=product_files, checkpoint=checkpoint, feedback=feedback,
                    loaded_model=lm)
    with tempfile.TemporaryDirectory(prefix="senclip-") as tmp:
        store = save_embeddings if save_embeddings is not None else Path(tmp) / "store"
        res = embed(input, store, **dict(emb_opts, overwrite=overwrite if save_embeddings is not None else False))
        del emb_opts
        if loaded_model is None:  # ours alone: the map needs only the text tower, so the image one's memory goes first
            lm = replace(lm, image=None)
        return classify_store(res.path, out, loaded_model=lm, **common)

