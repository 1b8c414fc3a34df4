"""Where the sun stood when the scene was taken: what casts cloud shadows where.

The granule metadata (``MTD_TL.xml``, ``Tile_Geocoding/Mean_Sun_Angle``) gives the mean sun zenith
and azimuth of the tile; that is the source of truth. Inputs without it (a band folder taken out of
its product, a GeoTIFF stack) fall back to the sun position computed from the acquisition time in
the file name (``…_20170216T102101_…``) at the scene centre, with NOAA's solar position equations
(accurate to a fraction of a degree, far finer than the cloud-height range the shadow search
spans). Without either, no sun angle is known and no shadows are projected.
"""
from __future__ import annotations

import datetime as _dt
import math
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

_TIME = re.compile(r"(?<!\d)(20\d{6})T(\d{6})(?!\d)")


@dataclass(frozen=True)
class SunAngles:
    zenith: float  # degrees from the vertical
    azimuth: float  # degrees clockwise from north
    source: str  # where they came from, for the run record


def from_mtd_tl(path) -> SunAngles | None:
    """Mean sun angles of a granule's MTD_TL.xml, or None when the file has none."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(_read_bytes(path))
    except (ET.ParseError, OSError, KeyError, zipfile.BadZipFile):
        return None
    for el in root.iter():
        if el.tag.split("}")[-1] == "Mean_Sun_Angle":
            vals = {c.tag.split("}")[-1]: c.text for c in el}
            try:
                return SunAngles(float(vals["ZENITH_ANGLE"]), float(vals["AZIMUTH_ANGLE"]), f"MTD_TL.xml ({path})")
            except (KeyError, TypeError, ValueError):
                return None
    return None


def _read_bytes(path) -> bytes:
    """A file's bytes; ``/vsizip/…/x.zip/inner`` paths (a zipped SAFE) are read from the zip."""
    m = re.match(r"/vsizip/(.+?\.zip)/(.+)$", str(path), re.I)
    if m:
        with zipfile.ZipFile(m.group(1)) as z:
            return z.read(m.group(2))
    return Path(path).read_bytes()


def acquisition_time(*names) -> _dt.datetime | None:
    """UTC acquisition time from a Sentinel-2 file or folder name (``YYYYMMDDTHHMMSS``)."""
    for name in names:
        m = _TIME.search(Path(str(name)).name) or _TIME.search(str(name))
        if m:
            try:
                return _dt.datetime.strptime(m.group(1) + m.group(2), "%Y%m%d%H%M%S").replace(tzinfo=_dt.timezone.utc)
            except ValueError:
                continue
    return None


def solar_position(when: _dt.datetime, lat: float, lon: float) -> tuple[float, float]:
    """(zenith, azimuth) in degrees at ``when`` (UTC) and ``lat``/``lon`` (degrees), NOAA's
    general solar position equations (fractional-year form)."""
    when = when.astimezone(_dt.timezone.utc)
    doy = when.timetuple().tm_yday
    hours = when.hour + when.minute / 60 + when.second / 3600
    g = 2 * math.pi / 365 * (doy - 1 + (hours - 12) / 24)  # fractional year, radians
    eqtime = 229.18 * (0.000075 + 0.001868 * math.cos(g) - 0.032077 * math.sin(g)
                       - 0.014615 * math.cos(2 * g) - 0.040849 * math.sin(2 * g))  # minutes
    decl = (0.006918 - 0.399912 * math.cos(g) + 0.070257 * math.sin(g) - 0.006758 * math.cos(2 * g)
            + 0.000907 * math.sin(2 * g) - 0.002697 * math.cos(3 * g) + 0.00148 * math.sin(3 * g))
    true_solar_min = hours * 60 + eqtime + 4 * lon
    ha = math.radians(true_solar_min / 4 - 180)  # hour angle
    phi = math.radians(lat)
    cos_z = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(ha)
    zen = math.acos(max(-1.0, min(1.0, cos_z)))
    # azimuth clockwise from north
    az = math.degrees(math.atan2(math.sin(ha), math.cos(ha) * math.sin(phi) - math.tan(decl) * math.cos(phi))) + 180
    return math.degrees(zen), az % 360


def scene_centre_lonlat(scene) -> tuple[float, float]:
    from rasterio.warp import transform

    t = scene.transform
    x, y = t * (scene.width / 2, scene.height / 2)
    lon, lat = transform(scene.crs, "EPSG:4326", [x], [y])
    return lon[0], lat[0]


def sun_angles(scene, mtd_tl=None) -> SunAngles | None:
    """MTD_TL.xml when there is one, else computed from the time in the name; None if neither."""
    if mtd_tl is not None:
        found = from_mtd_tl(mtd_tl)
        if found is not None:
            return found
    names = [scene.path, *[getattr(ds, "name", "") for ds, _ in getattr(scene, "_sources", [])]]
    when = acquisition_time(*names)
    if when is None:
        return None
    lon, lat = scene_centre_lonlat(scene)
    zen, az = solar_position(when, lat, lon)
    return SunAngles(zen, az, f"computed for {when:%Y-%m-%d %H:%M:%S} UTC at {lat:.3f} N, {lon:.3f} E "
                              "(no MTD_TL.xml)")
