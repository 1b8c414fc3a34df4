"""Thin base for the SenCLIP algorithms: names, help, parameters declared once, the worker call.

Parameter names are constants on :class:`SenclipAlgorithm`; each algorithm declares only the groups
it needs through the ``add_*`` helpers. ``request_args`` (in each algorithm) turns parameters into
the backend's keyword arguments without running anything, so it is tested without a backend.
"""
from __future__ import annotations

import re
from pathlib import Path

from qgis.core import (
    QgsCoordinateTransform,
    QgsFeature,
    QgsFeatureSink,
    QgsField,
    QgsFields,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterExtent,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFile,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProcessingUtils,
    QgsProviderRegistry,
    QgsVectorFileWriter,
)
from qgis.PyQt.QtCore import QCoreApplication

from .. import backend_client, catalog, compat
from ..messages import not_a_file_raster
from ..progress import ProgressTracker, format_seconds

HELP_DIR = Path(__file__).resolve().parent.parent / "help"


class SenclipAlgorithm(QgsProcessingAlgorithm):
    NAME = ""
    DISPLAY = ""

    INPUT = "INPUT"
    CLASSES = "CLASSES"
    PROMPTS = "PROMPTS"
    PROMPT_STYLE = "PROMPT_STYLE"
    MODEL = "MODEL"
    CHECKPOINT = "CHECKPOINT"
    BACKEND = "BACKEND"
    DEVICE = "DEVICE"
    TILE = "TILE"
    STRIDE = "STRIDE"
    BATCH_SIZE = "BATCH_SIZE"
    BANDS = "BANDS"
    RESOLUTION = "RESOLUTION"
    CALIBRATE = "CALIBRATE"
    TRANSDUCTIVE = "TRANSDUCTIVE"
    SPATIAL = "SPATIAL"
    EXTENT = "EXTENT"
    MASK = "MASK"
    STORE = "STORE"
    OFFLINE = "OFFLINE"
    INT8 = "INT8"
    PRECISION = "PRECISION"
    STRETCH = "STRETCH"
    CLOUD_MASK = "CLOUD_MASK"
    CLOUD_MASK_RASTER = "CLOUD_MASK_RASTER"
    MASK_SNOW = "MASK_SNOW"
    OUTPUT = "OUTPUT"
    OUTPUT_TABLE = "OUTPUT_TABLE"
    RESOLUTION_LABELS = {"grid": "tile grid (fast)", "pixel": "input pixels (smoother)"}  # by choice

    # -- identity ------------------------------------------------------------------------------
    def tr(self, text: str) -> str:
        return QCoreApplication.translate("SenclipAlgorithm", text)

    def createInstance(self):  # noqa: N802 - Qt naming
        return type(self)()

    def name(self) -> str:
        return self.NAME

    def displayName(self) -> str:  # noqa: N802
        return self.tr(self.DISPLAY)

    def group(self) -> str:
        return self.tr("Land cover (zero-shot)")

    def groupId(self) -> str:  # noqa: N802
        return "landcover"

    def shortHelpString(self) -> str:  # noqa: N802
        path = HELP_DIR / f"{self.NAME}.md"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return ""
        # Processing renders a small HTML subset; keep paragraphs, drop markdown markers.
        blocks = [b.strip().replace("\n", " ") for b in text.split("\n\n") if b.strip()]
        html = []
        for b in blocks:
            if b.startswith("#"):
                html.append(f"<h3>{b.lstrip('#').strip()}</h3>")
            else:
                html.append("<p>" + re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", b) + "</p>")
        return "".join(html)

    # -- parameter groups ----------------------------------------------------------------------
    def _advanced(self, param):
        param.setFlags(param.flags() | compat.PARAMETER_ADVANCED)
        self.addParameter(param)

    def add_prompt_params(self) -> None:
        self.addParameter(QgsProcessingParameterString(
            self.CLASSES, self.tr("Class names, separated by ';' (e.g. Forest;Sea or Lake)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFile(
            self.PROMPTS, self.tr("Prompt file (JSON: class -> list of prompts)"),
            extension="json", optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.PROMPT_STYLE, self.tr("Prompt style for classes without prompts"),
            options=catalog.PROMPT_STYLES, defaultValue=0))
        self.addParameter(QgsProcessingParameterEnum(
            self.RESOLUTION, self.tr("Output resolution"),
            options=[self.tr(self.RESOLUTION_LABELS.get(r, r)) for r in catalog.RESOLUTIONS], defaultValue=0))
        self._advanced(QgsProcessingParameterEnum(
            self.CALIBRATE, self.tr("Calibration over the whole scene (shares: drops the classes the scene lacks; "
                                    "column-mean assumes equal class shares and can hurt)"),
            options=catalog.CALIBRATIONS, defaultValue=0))
        self.add_transductive_params()

    def add_transductive_params(self) -> None:
        """--transductive and --spatial: the whole scene classified at once (docs/transductive.md)."""
        self.addParameter(QgsProcessingParameterBoolean(
            self.TRANSDUCTIVE, self.tr("Transductive: use the whole scene to sharpen the classes "
                                       "(learns class shares, drops absent classes)"),
            defaultValue=False))
        self._advanced(QgsProcessingParameterEnum(
            self.SPATIAL, self.tr("Transductive: spatial neighbours pulled to the same class (8, 4 or none)"),
            options=catalog.SPATIAL, defaultValue=0))

    def transductive_args(self, parameters, context) -> dict:
        return {"transductive": self.parameterAsBool(parameters, self.TRANSDUCTIVE, context),
                "spatial": self.enum_value(parameters, self.SPATIAL, context, catalog.SPATIAL)}

    def add_model_params(self) -> None:
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, self.tr("Model (auto = default model, or the checkpoint's own architecture)"),
            options=catalog.model_choices(), defaultValue=catalog.MODEL_AUTO, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.CHECKPOINT, self.tr("Checkpoint file (.ckpt/.pt/.safetensors; wins over the model)"),
            optional=True))
        self.add_runtime_params()
        self.add_tiling_params()
        self.addParameter(QgsProcessingParameterString(
            self.BANDS, self.tr("Band numbers for red,green,blue (empty = detect Sentinel-2 B04,B03,B02)"),
            optional=True))
        self.addParameter(QgsProcessingParameterExtent(
            self.EXTENT, self.tr("Extent (empty = whole raster)"), optional=True))
        self.addParameter(QgsProcessingParameterVectorLayer(
            self.MASK, self.tr("Mask polygons (only inside is classified)"),
            [compat.SOURCE_VECTOR_POLYGON], optional=True))
        self.add_cloud_params()
        self._advanced(QgsProcessingParameterEnum(
            self.STRETCH, self.tr("8-bit conversion (fixed 0-0.3 reflectance, or each tile's own min-max as in "
                                  "SenCLIP training)"), options=catalog.STRETCHES, defaultValue=0))
        self._advanced(QgsProcessingParameterEnum(
            self.PRECISION, self.tr("Precision of the image encoder (auto = fastest this CPU runs at cosine >= 0.999 "
                                    "to fp32; int8 needs the ONNX backend, bf16 AMX/AVX512_BF16 or CUDA)"),
            options=catalog.PRECISIONS, defaultValue=0))
        self._advanced(QgsProcessingParameterBoolean(
            self.INT8, self.tr("int8 image encoder (deprecated: same as precision int8)"),
            defaultValue=False))
        self._advanced(QgsProcessingParameterBoolean(
            self.OFFLINE, self.tr("Offline (use cached weights only)"), defaultValue=False))

    def add_cloud_params(self) -> None:
        self.addParameter(QgsProcessingParameterEnum(
            self.CLOUD_MASK, self.tr("Cloud and shadow mask (auto: the L2A scene classification, else s2cloudless "
                                     "on L1C bands, else none)"), options=catalog.CLOUD_MASKS, defaultValue=0))
        self._advanced(QgsProcessingParameterRasterLayer(
            self.CLOUD_MASK_RASTER, self.tr("Cloud mask raster (non-zero = masked; replaces the cloud mask above)"),
            optional=True))
        self._advanced(QgsProcessingParameterBoolean(
            self.MASK_SNOW, self.tr("Also mask snow (scene classification class 11)"), defaultValue=False))

    def cloud_args(self, parameters, context) -> dict:
        raster = self.parameterAsRasterLayer(parameters, self.CLOUD_MASK_RASTER, context) \
            if parameters.get(self.CLOUD_MASK_RASTER) not in (None, "") else None
        return {"cloud_mask": self.raster_path(raster) if raster is not None
                else self.enum_value(parameters, self.CLOUD_MASK, context, catalog.CLOUD_MASKS),
                "mask_snow": self.parameterAsBoolean(parameters, self.MASK_SNOW, context) or None}

    def add_tiling_params(self) -> None:
        """TILE, STRIDE and BATCH_SIZE (advanced): declared once for every algorithm that encodes."""
        self._advanced(QgsProcessingParameterNumber(
            self.TILE, self.tr("Tile size (pixels)"), compat.NUMBER_INTEGER,
            defaultValue=64, minValue=8, maxValue=4096))
        self._advanced(QgsProcessingParameterNumber(
            self.STRIDE, self.tr("Stride (pixels; empty = half the tile)"),
            compat.NUMBER_INTEGER, optional=True, minValue=1, maxValue=4096))
        self._advanced(QgsProcessingParameterNumber(
            self.BATCH_SIZE, self.tr("Batch size"), compat.NUMBER_INTEGER,
            defaultValue=32, minValue=1, maxValue=4096))

    def add_store_param(self, name: str | None = None,
                        text: str = "Embedding store (folder made by 'Compute image embeddings')") -> None:
        """An embedding store folder input (STORE unless ``name`` says otherwise)."""
        self.addParameter(QgsProcessingParameterFile(name or self.STORE, self.tr(text), behavior=compat.FILE_FOLDER))

    def add_runtime_params(self) -> None:
        self.addParameter(QgsProcessingParameterEnum(
            self.BACKEND, self.tr("Inference backend"), options=catalog.BACKENDS, defaultValue=0))
        self._advanced(QgsProcessingParameterEnum(
            self.DEVICE, self.tr("Device"), options=catalog.DEVICES, defaultValue=0))

    def add_table_output(self) -> None:
        self.addParameter(QgsProcessingParameterFeatureSink(
            self.OUTPUT_TABLE, self.tr("Class areas"), compat.SOURCE_VECTOR, optional=True,
            createByDefault=True))

    # -- parameters -> backend kwargs ----------------------------------------------------------
    def enum_value(self, parameters, name, context, options):
        return options[self.parameterAsEnum(parameters, name, context)]

    def prompt_args(self, parameters, context) -> dict:
        classes_text = self.parameterAsString(parameters, self.CLASSES, context) or ""
        classes = [c.strip() for c in classes_text.split(";") if c.strip()]
        prompts = self.parameterAsFile(parameters, self.PROMPTS, context) or None
        if not classes and not prompts:
            raise QgsProcessingException(self.tr(
                "Give the class names (CLASSES, e.g. 'Forest;Sea or Lake') or a prompt file (PROMPTS)"))
        return {
            "classes": classes or None, "prompts": prompts,
            "prompt_style": self.enum_value(parameters, self.PROMPT_STYLE, context, catalog.PROMPT_STYLES),
            "resolution": self.enum_value(parameters, self.RESOLUTION, context, catalog.RESOLUTIONS),
            "calibrate": self.enum_value(parameters, self.CALIBRATE, context, catalog.CALIBRATIONS),
            **self.transductive_args(parameters, context),
        }

    def runtime_args(self, parameters, context) -> dict:
        return {"backend": self.enum_value(parameters, self.BACKEND, context, catalog.BACKENDS),
                "device": self.enum_value(parameters, self.DEVICE, context, catalog.DEVICES)}

    def model_args(self, parameters, context, layer, feedback) -> dict:
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context) or None
        model = self.model_choice(parameters, checkpoint, feedback)
        bands_text = (self.parameterAsString(parameters, self.BANDS, context) or "").strip()
        bands = bands_text.replace(" ", "") or None  # "4,3,2" or "B04,B03,B02"; checked by the backend
        stride = parameters.get(self.STRIDE)
        args = {
            "model": model, "checkpoint": checkpoint, "bands": bands,
            "tile": self.parameterAsInt(parameters, self.TILE, context),
            "stride": self.parameterAsInt(parameters, self.STRIDE, context) if stride not in (None, "") else None,
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "offline": self.parameterAsBoolean(parameters, self.OFFLINE, context) or None,
            "stretch": self.enum_value(parameters, self.STRETCH, context, catalog.STRETCHES),
            "int8": self.parameterAsBoolean(parameters, self.INT8, context) or None,
            "precision": self.enum_value(parameters, self.PRECISION, context, catalog.PRECISIONS),
        }
        args.update(self.runtime_args(parameters, context))
        args.update(self.cloud_args(parameters, context))
        if parameters.get(self.EXTENT) not in (None, ""):
            rect = self.parameterAsExtent(parameters, self.EXTENT, context, layer.crs())
            if not rect.isEmpty():
                args["bounds"] = [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]
        mask = self.parameterAsVectorLayer(parameters, self.MASK, context)
        if mask is not None:
            args["mask"] = self.export_mask(mask, layer.crs(), context, feedback)
        return args

    def model_choice(self, parameters, checkpoint, feedback) -> str | None:
        """The model id to send (None with a checkpoint: the checkpoint wins), see catalog."""
        try:
            model, note = catalog.resolve_model_choice(parameters.get(self.MODEL), checkpoint)
        except ValueError as exc:
            raise QgsProcessingException(str(exc))
        if note and feedback is not None:
            feedback.pushInfo(note)
        return model

    def checkParameterValues(self, parameters, context):  # noqa: N802 - Qt naming
        """Accept the integer MODEL of models/scripts saved before ids became strings."""
        value = parameters.get(self.MODEL) if self.parameterDefinition(self.MODEL) else None
        if value is not None and str(value).strip().lstrip("-").isdigit():
            try:
                model, _ = catalog.resolve_model_choice(value, None)
            except ValueError as exc:
                return False, str(exc)
            parameters = dict(parameters, **{self.MODEL: model})
        return super().checkParameterValues(parameters, context)

    @staticmethod
    def raster_path(layer) -> str:
        """The file behind a raster layer; the backend reads files, not QGIS providers."""
        if layer is None:
            raise QgsProcessingException("INPUT: no raster layer given")
        if layer.providerType() != "gdal":
            raise QgsProcessingException("INPUT: " + not_a_file_raster(layer.name(), layer.providerType()))
        parts = QgsProviderRegistry.instance().decodeUri("gdal", layer.source())
        return parts.get("path") or layer.source()

    def export_mask(self, mask, crs, context, feedback) -> str:
        """Masks go to the backend as GeoJSON in the raster's CRS: one format, no reprojection there."""
        path = QgsProcessingUtils.generateTempFilename("senclip_mask.geojson")
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GeoJSON"
        options.fileEncoding = "UTF-8"
        options.ct = QgsCoordinateTransform(mask.crs(), crs, context.transformContext())
        err = QgsVectorFileWriter.writeAsVectorFormatV3(mask, path, context.transformContext(), options)
        if err[0] != QgsVectorFileWriter.WriterError.NoError:
            raise QgsProcessingException(f"MASK: cannot export '{mask.name()}' to {path}: {err[1]}")
        feedback.pushInfo(f"mask exported to {path}")
        return path

    # -- running -------------------------------------------------------------------------------
    def run_backend(self, op: str, args: dict, feedback) -> dict:
        tracker = ProgressTracker()

        def on_event(event):
            kind = event.get("event")
            if kind == "progress":
                percent, line, _ = tracker.update(event)
                feedback.setProgress(percent)
                if line:  # Processing logs every setProgressText: once per stage, not per batch
                    feedback.setProgressText(line)
            elif kind == "info":
                feedback.pushInfo(event.get("message", ""))
            elif kind == "warning":
                feedback.reportError(event.get("message", ""), False)

        feedback.pushDebugInfo(f"senclip worker request: {op} {args}")
        try:
            result = backend_client.run_request(op, args, on_event=on_event,
                                                is_canceled=feedback.isCanceled,
                                                on_stderr=feedback.pushDebugInfo)
        except backend_client.BackendError as exc:
            raise QgsProcessingException(str(exc))
        feedback.pushInfo(self.tr("SenCLIP {} finished in {}").format(op, format_seconds(tracker.elapsed())))
        return result

    # -- class areas ---------------------------------------------------------------------------
    def report_areas(self, result: dict, parameters, context, feedback) -> str | None:
        """Log the class areas and write them to OUTPUT_TABLE; returns the table's id."""
        classes = result.get("classes") or []
        counts = per_class(result.get("counts"), classes, 0)
        areas = per_class(result.get("area_m2"), classes, None)
        conf = per_class(result.get("mean_confidence"), classes, None)
        total = float(sum(counts)) or 1.0  # percent of the classified area
        fields = QgsFields()
        for name, kind in (("value", "int"), ("class", "string"), ("pixels", "int64"),
                           ("area_km2", "double"), ("percent", "double"), ("mean_confidence", "double")):
            fields.append(QgsField(name, compat.field_type(kind)))
        sink, dest = self.parameterAsSink(parameters, self.OUTPUT_TABLE, context, fields,
                                          compat.NO_GEOMETRY)
        feedback.pushInfo(self.tr("Class areas:"))
        for i, name in enumerate(classes):
            km2 = None if areas[i] is None else areas[i] / 1e6
            pct = 100.0 * counts[i] / total
            mc = conf[i]
            feedback.pushInfo("  {:<28} {:>12} km²  {:6.2f} %  mean confidence {}".format(
                name, "n/a" if km2 is None else f"{km2:.4f}", pct,
                "n/a" if mc is None else f"{mc:.3f}"))
            if sink is not None:
                f = QgsFeature(fields)
                f.setAttributes([i + 1, name, int(counts[i]), km2, pct, mc])
                sink.addFeature(f, QgsFeatureSink.Flag.FastInsert)
        if classes and all(a is None for a in areas):
            feedback.pushInfo(self.tr("(areas need a projected CRS; the raster's CRS is geographic)"))
        self.report_cloud(result, total, feedback)
        return dest

    def report_cloud(self, result: dict, classified: float, feedback) -> None:
        """The masked share and which mask was used (or why none was)."""
        masked = int(result.get("cloud_masked") or 0)
        if masked:
            feedback.pushInfo(self.tr("  cloud / shadow (masked): {:.2f} % of the mapped area").format(
                100.0 * masked / (classified + masked)))
        record = result.get("cloud_mask") or {}
        if record.get("note"):
            feedback.pushInfo(self.tr("Cloud mask: {}").format(record["note"]))


def per_class(values, classes: list, default) -> list:
    """The backend reports per-class numbers as {class: value}; order them like ``classes``."""
    if isinstance(values, dict):
        return [values.get(c, default) for c in classes]
    if isinstance(values, list) and len(values) == len(classes):
        return values
    return [default] * len(classes)


class EmbeddingToolAlgorithm(SenclipAlgorithm):
    """The tools that work from an embedding store: few-shot, find similar, change, accuracy."""

    def group(self) -> str:
        return self.tr("Embedding tools")

    def groupId(self) -> str:  # noqa: N802
        return "embedding_tools"
