"""Backend messages reworded for QGIS users: one line, and a fix they can reach from QGIS.

The backend speaks to command-line users ("run `senclip models download X`"); a QGIS user has no
such command but has the plugin's *Download model weights* action (dock button and the Processing
algorithm ``senclip:download_weights``). Qt-free: algorithms and the dock both use it.
"""
from __future__ import annotations

import re

DOWNLOAD_ACTION = "SenCLIP ▸ Download model weights (dock button or Processing algorithm)"

_MISSING = re.compile(
    r"weights for model '(?P<id>[^']+)' are not available \((?P<why>.*?)\): the file (?P<file>\S+) is "
    r"missing\. On a machine with network download (?P<url>\S+) and copy it to (?P<path>.+?) \(", re.S)
_CLI_DOWNLOAD = re.compile(r"`?senclip models download (?P<id>[\w.\-]+)`?")


def for_qgis(message: str, type_: str = "") -> str:
    """``message`` as a QGIS user should read it (unchanged when there is nothing to translate)."""
    m = _MISSING.search(message)
    if m:
        return (f"Model weights for '{m['id']}' are not on this computer ({m['why']}). Online: use "
                f"{DOWNLOAD_ACTION}. Offline: copy {m['file']} (from {m['url']}) to {m['path']}.")
    return _CLI_DOWNLOAD.sub(DOWNLOAD_ACTION, message)


WEB_PROVIDERS = {"wms", "wcs", "xyz", "arcgismapserver", "arcgisfeatureserver", "vectortile", "mbtiles"}


def not_a_file_raster(layer_name: str, provider: str) -> str:
    """What to do with a layer the backend cannot read (web tiles, WMS, a database raster)."""
    how = ("right-click the layer ▸ Export ▸ Save As… (Output mode: Raw data, Format: GeoTIFF; "
           "set the extent and resolution you need), then run SenCLIP on the new layer")
    if provider.lower() in WEB_PROVIDERS:
        return (f"Layer '{layer_name}' is a web layer ({provider}): SenCLIP needs the Sentinel-2 bands "
                f"as a file. Export it to a GeoTIFF first: {how}.")
    return (f"Layer '{layer_name}' is served by the '{provider}' provider; SenCLIP needs a file-based raster "
            f"(GeoTIFF, JP2, VRT). Export it first: {how}.")
