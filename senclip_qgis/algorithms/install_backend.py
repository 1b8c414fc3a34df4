"""senclip:install_backend — create or repair the backend environment, headless or from the toolbox."""
from __future__ import annotations

import shlex

from qgis.core import (
    QgsProcessingException,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterString,
    QgsSettings,
)

from .. import backend_client, compat, install_plan, installer
from .base import SenclipAlgorithm


class InstallBackendAlgorithm(SenclipAlgorithm):
    NAME = "install_backend"
    DISPLAY = "Install or repair backend"
    VENV = "VENV"
    EXTRAS = "EXTRAS"
    BASE_PYTHON = "BASE_PYTHON"
    SYSTEM_SITE = "SYSTEM_SITE_PACKAGES"
    PIP_OPTIONS = "PIP_OPTIONS"
    RECREATE = "RECREATE"
    REMEMBER = "REMEMBER"
    PYTHON = "PYTHON"
    TORCH_BUILD = "TORCH_BUILD"
    BUNDLE = "BUNDLE"
    USE_UV = "USE_UV"
    EXTRA_KEYS = list(installer.EXTRAS)

    def group(self) -> str:
        return self.tr("Set-up")

    def groupId(self) -> str:  # noqa: N802
        return "setup"

    def flags(self):
        # pip and venv must not run twice at once, and the thread must not matter to them.
        return super().flags() | compat.ALGORITHM_NO_THREADING

    def initAlgorithm(self, config=None):  # noqa: N802 - Qt naming
        self.addParameter(QgsProcessingParameterFile(
            self.VENV, self.tr("Environment folder (empty = {})").format(backend_client.default_venv_dir()),
            behavior=compat.FILE_FOLDER, optional=True))
        self.addParameter(QgsProcessingParameterEnum(
            self.EXTRAS, self.tr("What to install"),
            options=[self.tr("full: the light backend + PyTorch and open_clip (training, GPU through torch, "
                             "the torch backend; large download)"),
                     self.tr("light, without PyTorch: ONNX Runtime + OpenVINO + the s2cloudless cloud mask "
                             "(every model and map; ≈ 0.55 GB)"),
                     self.tr("the backend only (dependencies already present)"),
                     self.tr("light with ONNX Runtime's CUDA provider (NVIDIA GPU, ≈ 2.9 GB; untested)")],
            defaultValue=self.EXTRA_KEYS.index(installer.DEFAULT_EXTRAS)))
        self.addParameter(QgsProcessingParameterEnum(
            self.TORCH_BUILD, self.tr("PyTorch build of the full install (auto: CUDA with an NVIDIA GPU, else "
                                      "CPU-only ≈ 1.6 GB instead of ≈ 6.2 GB)"),
            options=install_plan.TORCH_BUILDS, defaultValue="auto", usesStaticStrings=True))
        self.addParameter(QgsProcessingParameterFile(
            self.BUNDLE, self.tr("Offline bundle folder (from 'senclip bundle create'; empty = download)"),
            behavior=compat.FILE_FOLDER, optional=True))
        self._advanced(QgsProcessingParameterFile(
            self.BASE_PYTHON, self.tr("Python to create the environment with (empty = detect)"),
            optional=True, fileFilter="All files (*)"))  # interpreters have no extension
        self._advanced(QgsProcessingParameterBoolean(
            self.SYSTEM_SITE, self.tr("See the system's site-packages (reuse its rasterio/GDAL; Linux default)"),
            defaultValue=installer.default_system_site_packages()))
        self._advanced(QgsProcessingParameterString(
            self.PIP_OPTIONS, self.tr("Extra pip options (e.g. --find-links DIR --no-index, "
                                      "--extra-index-url https://download.pytorch.org/whl/cpu)"),
            optional=True))
        self._advanced(QgsProcessingParameterBoolean(
            self.USE_UV, self.tr("Use uv when it is installed (faster)"), defaultValue=True))
        self._advanced(QgsProcessingParameterBoolean(
            self.RECREATE, self.tr("Delete and recreate the environment"), defaultValue=False))
        self._advanced(QgsProcessingParameterBoolean(
            self.REMEMBER, self.tr("Use this environment from now on (plugin setting)"), defaultValue=True))
        self.addOutput(QgsProcessingOutputString(self.PYTHON, self.tr("Backend Python")))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        venv = self.parameterAsFile(parameters, self.VENV, context) or str(backend_client.default_venv_dir())
        base = self.parameterAsFile(parameters, self.BASE_PYTHON, context) or None
        extras = self.EXTRA_KEYS[self.parameterAsEnum(parameters, self.EXTRAS, context)]
        try:
            pip_options = shlex.split(self.parameterAsString(parameters, self.PIP_OPTIONS, context) or "")
        except ValueError as exc:
            raise QgsProcessingException(f"PIP_OPTIONS: {exc}")
        try:
            report = installer.install(
                venv, base_python=base, extras=extras, pip_options=pip_options,
                system_site_packages=self.parameterAsBoolean(parameters, self.SYSTEM_SITE, context),
                recreate=self.parameterAsBoolean(parameters, self.RECREATE, context),
                torch_build=self.parameterAsEnumString(parameters, self.TORCH_BUILD, context) or "auto",
                bundle=self.parameterAsFile(parameters, self.BUNDLE, context) or None,
                use_uv=self.parameterAsBoolean(parameters, self.USE_UV, context),
                log=feedback.pushConsoleInfo, is_canceled=feedback.isCanceled)
        except (installer.InstallError, backend_client.BackendError, OSError) as exc:
            raise QgsProcessingException(f"backend installation failed: {exc}")
        python = str(backend_client.venv_python(venv))
        if self.parameterAsBoolean(parameters, self.REMEMBER, context):
            if str(backend_client.default_venv_dir()) != venv:
                QgsSettings().setValue(backend_client.SETTINGS_KEY, python)
            else:
                QgsSettings().remove(backend_client.SETTINGS_KEY)
        for key, value in (report.get("versions") or {}).items():
            feedback.pushInfo(f"{key}: {value}")
        feedback.pushInfo(f"devices: {report.get('devices')}")
        return {self.PYTHON: python}
