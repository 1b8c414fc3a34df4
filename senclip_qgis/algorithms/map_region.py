"""senclip:map_region — many Sentinel-2 scenes (layers, files or a STAC JSON) into one styled mosaic.

The backend runs the job on Dask (a LocalCluster of worker processes, or an existing scheduler),
writes a COG per scene, the mosaic (COG + VRT) and a manifest into the output folder; a rerun
into the same folder resumes. Progress is per scene; Cancel kills the backend and its cluster.
"""
from __future__ import annotations

from qgis.core import (
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingOutputRasterLayer,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from .. import catalog, compat
from ..styling import ClassMapPostProcessor
from .base import SenclipAlgorithm

OVERLAP_RULES = ["confidence", "majority"]


class MapRegionAlgorithm(SenclipAlgorithm):
    NAME = "map_region"
    DISPLAY = "Map a region from many scenes (Dask, STAC)"

    INPUTS = "INPUTS"
    STAC = "STAC"
    OVERLAP = "OVERLAP"
    WORKERS = "WORKERS"
    SCHEDULER = "SCHEDULER"
    OUTPUT_FOLDER = "OUTPUT_FOLDER"

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterMultipleLayers(
            self.INPUTS, self.tr("Sentinel-2 scenes (raster layers or files, one per scene)"),
            compat.SOURCE_RASTER, optional=True))
        self.addParameter(QgsProcessingParameterString(
            self.STAC, self.tr("STAC ItemCollection or catalog JSON (file path or URL)"), optional=True))
        self.add_prompt_params()
        self.addParameter(QgsProcessingParameterEnum(
            self.MODEL, self.tr("Model (auto = default model, or the checkpoint's own architecture)"),
            options=catalog.model_choices(), defaultValue=catalog.MODEL_AUTO, usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.CHECKPOINT, self.tr("Checkpoint file (.ckpt/.pt/.safetensors; wins over the model)"),
            optional=True))
        self.add_runtime_params()
        self.addParameter(QgsProcessingParameterEnum(
            self.OVERLAP, self.tr("Where scenes overlap"),
            options=[self.tr("highest confidence wins"), self.tr("majority over dates")], defaultValue=0))
        self.add_tiling_params()
        self._advanced(QgsProcessingParameterNumber(
            self.WORKERS, self.tr("Worker processes (empty = by cores and memory)"),
            compat.NUMBER_INTEGER, optional=True, minValue=1, maxValue=1024))
        self._advanced(QgsProcessingParameterString(
            self.SCHEDULER, self.tr("Existing Dask scheduler (tcp://host:8786; empty = a local cluster)"),
            optional=True))
        self.addParameter(QgsProcessingParameterFolderDestination(
            self.OUTPUT_FOLDER, self.tr("Output folder (per-scene maps, mosaic, manifest)")))
        self.addOutput(QgsProcessingOutputRasterLayer(self.OUTPUT, self.tr("Mosaic")))
        self.add_table_output()

    def request_args(self, parameters, context, feedback) -> dict:
        inputs = [p for p in self.parameterAsFileList(parameters, self.INPUTS, context) if p]
        stac = (self.parameterAsString(parameters, self.STAC, context) or "").strip()
        if stac:
            inputs.append(stac)
        if not inputs:
            raise QgsProcessingException(self.tr(
                "Give the scenes (INPUTS: raster layers or files) or a STAC JSON (STAC: file or URL)"))
        checkpoint = self.parameterAsFile(parameters, self.CHECKPOINT, context) or None
        model = self.model_choice(parameters, checkpoint, feedback)
        stride = parameters.get(self.STRIDE)
        workers = parameters.get(self.WORKERS)
        args = {
            "inputs": inputs, "out": self.parameterAsString(parameters, self.OUTPUT_FOLDER, context),
            "model": model, "checkpoint": checkpoint,
            "tile": self.parameterAsInt(parameters, self.TILE, context),
            "stride": self.parameterAsInt(parameters, self.STRIDE, context) if stride not in (None, "") else None,
            "batch_size": self.parameterAsInt(parameters, self.BATCH_SIZE, context),
            "overlap": self.enum_value(parameters, self.OVERLAP, context, OVERLAP_RULES),
            "workers": self.parameterAsInt(parameters, self.WORKERS, context) if workers not in (None, "") else None,
            "scheduler": (self.parameterAsString(parameters, self.SCHEDULER, context) or "").strip() or None,
            "dashboard": False,
        }
        args.update(self.prompt_args(parameters, context))
        args.update(self.runtime_args(parameters, context))
        return args

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        args = self.request_args(parameters, context, feedback)
        result = self.run_backend("map_region", args, feedback)
        for rec in result.get("scenes") or []:
            if rec.get("status") == "failed":
                feedback.reportError(f"scene {rec.get('id')} failed: {rec.get('error')}", False)
        feedback.pushInfo(f"{result.get('done')} scene(s) mapped ({result.get('skipped')} already done), "
                          f"{result.get('failed')} failed; manifest {result.get('manifest')}")
        mosaic = result.get("mosaic")
        if not mosaic:
            raise QgsProcessingException("no scene could be mapped, so there is no mosaic; see the log and "
                                         f"{result.get('manifest')}")
        classes = list(mosaic.get("counts") or {})
        table = self.report_areas({"classes": classes, "counts": mosaic.get("counts"),
                                   "area_m2": mosaic.get("area_m2")}, parameters, context, feedback)
        path = mosaic["path"]
        details = QgsProcessingContext.LayerDetails(self.tr("SenCLIP mosaic"), context.project(), self.OUTPUT)
        context.addLayerToLoadOnCompletion(path, details)
        context.layerToLoadOnCompletionDetails(path).setPostProcessor(ClassMapPostProcessor.create(classes))
        outputs = {self.OUTPUT: path, self.OUTPUT_FOLDER: args["out"], "CLASSES": ";".join(classes)}
        if table is not None:
            outputs[self.OUTPUT_TABLE] = table
        return outputs
