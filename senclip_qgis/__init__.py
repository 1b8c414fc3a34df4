"""SenCLIP for QGIS: zero-shot Sentinel-2 land-cover maps from free-text prompts.

The plugin imports only qgis, qgis.PyQt and the standard library; the model runs in a separate
backend process (see ``backend_client``).
"""


def classFactory(iface):  # noqa: N802 - QGIS entry point
    from .plugin import SenclipPlugin

    return SenclipPlugin(iface)
