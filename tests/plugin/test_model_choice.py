"""MODEL and CHECKPOINT as the toolbox dialog, the batch dialog and the modeler send them.

Those front ends always send *some* MODEL value (the widget's default), so a checkpoint chosen in
them must win over it; and MODEL holds ids, not positions, so adding a registry entry cannot change
what a saved model or script runs. Parameters come from the real Processing widgets here, then run
through the real backend with a tiny checkpoint.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from qgis.core import (
    QgsProcessingContext, QgsProcessingFeedback, QgsProcessingModelAlgorithm,
    QgsProcessingModelChildParameterSource, QgsProcessingOutputLayerDefinition,
)


@pytest.fixture
def dialog_iface(qgis_iface, monkeypatch):
    """pytest-qgis's iface lacks the browser model that Processing's parameter panels ask for."""
    from qgis.gui import QgsBrowserGuiModel

    model = QgsBrowserGuiModel()
    monkeypatch.setattr(qgis_iface, "browserModel", lambda: model, raising=False)
    return qgis_iface


def run(alg_id, params):
    import processing

    return processing.run(alg_id, params, feedback=QgsProcessingFeedback(), context=QgsProcessingContext())


def output_for(alg_id: str, tmp_path: Path, tag: str) -> str:
    return str(tmp_path / (f"{tag}.tif" if alg_id == "senclip:classify" else f"{tag}_store"))


def user_values(alg_id, s2_raster, checkpoint) -> dict:
    values = {"INPUT": str(s2_raster), "CHECKPOINT": str(checkpoint)}
    if alg_id == "senclip:classify":
        values["CLASSES"] = "Forest;Sea or Lake"
    return values


def check_output(alg_id, res, out):
    assert Path(res["OUTPUT"]) == Path(out)
    assert Path(out).is_file() if alg_id == "senclip:classify" else (Path(out) / "meta.json").is_file()


@pytest.mark.parametrize("alg_id", ["senclip:classify", "senclip:embed"])
def test_toolbox_dialog_runs_with_a_checkpoint(alg_id, provider, dialog_iface, s2_raster, plugin_checkpoint,
                                               tmp_path):
    from processing.gui.AlgorithmDialog import AlgorithmDialog
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    dialog = AlgorithmDialog(alg)
    panel = dialog.mainWidget()
    context = QgsProcessingContext()
    for name, value in user_values(alg_id, s2_raster, plugin_checkpoint).items():
        panel.wrappers[name].setParameterValue(value, context)
    out = output_for(alg_id, tmp_path, "dialog")
    panel.wrappers["OUTPUT"].setParameterValue(out, context)
    if "OUTPUT_TABLE" in panel.wrappers:
        panel.wrappers["OUTPUT_TABLE"].setParameterValue("TEMPORARY_OUTPUT", context)
    params = dialog.createProcessingParameters()
    assert params["MODEL"] == "auto", "the dialog's MODEL default is the id 'auto'"
    assert params["CHECKPOINT"] == str(plugin_checkpoint)
    res = run(alg_id, params)
    check_output(alg_id, res, out)
    dialog.deleteLater()


@pytest.mark.parametrize("alg_id", ["senclip:classify", "senclip:embed"])
def test_batch_dialog_rows_run_with_a_checkpoint(alg_id, provider, dialog_iface, s2_raster, plugin_checkpoint,
                                                 tmp_path):
    from processing.gui.BatchAlgorithmDialog import BatchAlgorithmDialog
    from qgis.core import QgsApplication

    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    dialog = BatchAlgorithmDialog(alg)
    panel = dialog.mainWidget()
    context = QgsProcessingContext()
    col = panel.parameter_to_column
    for name, value in user_values(alg_id, s2_raster, plugin_checkpoint).items():
        panel.wrappers[0][col[name]].setParameterValue(value, context)
    out = output_for(alg_id, tmp_path, "batch")
    panel.tblParameters.cellWidget(1, col["OUTPUT"]).setValue(out)
    if "OUTPUT_TABLE" in col:
        panel.tblParameters.cellWidget(1, col["OUTPUT_TABLE"]).setValue(str(tmp_path / "batch_areas.csv"))
    params, ok = panel.parametersForRow(0, warnOnInvalid=True)
    assert ok, "the batch row's own values must be acceptable"
    assert params["MODEL"] == "auto" and params["CHECKPOINT"] == str(plugin_checkpoint)
    params = {k: (v.sink.staticValue() if isinstance(v, QgsProcessingOutputLayerDefinition) else v)
              for k, v in params.items()}
    res = run(alg_id, params)
    check_output(alg_id, res, out)
    dialog.deleteLater()


@pytest.mark.parametrize("alg_id", ["senclip:classify", "senclip:embed"])
def test_modeler_child_runs_with_a_checkpoint(alg_id, provider, dialog_iface, s2_raster, plugin_checkpoint,
                                              tmp_path):
    """The modeler's parameter dialog fills MODEL with the widget default, as a user adding the step sees."""
    from processing.modeler.ModelerParametersDialog import ModelerParametersDialog
    from qgis.core import QgsApplication

    model = QgsProcessingModelAlgorithm("checkpoint model", "tests")
    alg = QgsApplication.processingRegistry().createAlgorithmById(alg_id)
    dialog = ModelerParametersDialog(alg, model)
    child = dialog.createAlgorithm()
    assert child.parameterSources()["MODEL"][0].staticValue() == "auto"
    for name, value in user_values(alg_id, s2_raster, plugin_checkpoint).items():
        child.addParameterSources(name, [QgsProcessingModelChildParameterSource.fromStaticValue(value)])
    out = output_for(alg_id, tmp_path, "modeler")
    child.addParameterSources("OUTPUT", [QgsProcessingModelChildParameterSource.fromStaticValue(out)])
    if alg_id == "senclip:classify":
        child.addParameterSources("OUTPUT_TABLE", [
            QgsProcessingModelChildParameterSource.fromStaticValue(str(tmp_path / "modeler_areas.csv"))])
    model.addChildAlgorithm(child)
    feedback = QgsProcessingFeedback()
    model.run({}, QgsProcessingContext(), feedback)
    if alg_id == "senclip:classify":
        assert Path(out).is_file()
    else:
        assert (Path(out) / "meta.json").is_file()
    dialog.deleteLater()


def test_model_ids_are_stable_strings_and_old_indexes_keep_their_meaning(provider, s2_raster, tmp_path):
    from senclip_qgis import catalog
    from senclip_qgis.algorithms.classify import ClassifyAlgorithm

    alg = ClassifyAlgorithm()
    alg.initAlgorithm()
    param = alg.parameterDefinition("MODEL")
    assert param.usesStaticStrings() and param.defaultValue() == "auto"
    assert param.options() == catalog.model_choices() and "clip-rn50-openai" in param.options()
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    base = {"INPUT": str(s2_raster), "CLASSES": "A;B", "OUTPUT": str(tmp_path / "o.tif")}
    assert alg.request_args(dict(base, MODEL="clip-rn50-openai"), context, feedback)["model"] == "clip-rn50-openai"
    assert alg.request_args(dict(base, MODEL="auto"), context, feedback)["model"] == catalog.DEFAULT_MODEL
    # a saved script from before: MODEL=1 was 'clip-rn50-openai' (sorted file glob, default first)
    assert alg.checkParameterValues(dict(base, MODEL=1), context)[0]
    assert alg.request_args(dict(base, MODEL=1), context, feedback)["model"] == "clip-rn50-openai"
    ok, message = alg.checkParameterValues(dict(base, MODEL=99), context)
    assert not ok and "model id" in message
