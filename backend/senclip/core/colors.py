"""Class colours a map reader expects: forests green, water blue, built-up red, crops yellow.

Colours are picked by keywords in the class name, then from a qualitative palette for the rest,
never repeating a colour within one map.
"""
from __future__ import annotations

KEYWORDS: list[tuple[tuple[str, ...], tuple[int, int, int]]] = [
    (("conifer",), (0, 90, 40)),
    (("broad",), (60, 160, 60)),
    (("mixed forest",), (30, 120, 50)),
    (("forest", "wood", "tree"), (34, 139, 34)),
    (("sea", "marine", "ocean"), (0, 70, 160)),
    (("lake", "inland water", "water", "reservoir"), (40, 110, 220)),
    (("river", "stream", "canal"), (80, 160, 255)),
    (("wetland", "marsh", "bog"), (110, 170, 180)),
    (("beach", "dune", "sand"), (240, 225, 160)),
    (("residential", "urban", "house", "village", "town", "city"), (220, 40, 40)),
    (("industrial", "commercial", "factory"), (160, 60, 140)),
    (("highway", "road", "railway"), (90, 90, 90)),
    (("permanent crop", "orchard", "vineyard", "olive"), (200, 120, 40)),
    (("annual crop", "arable", "crop", "wheat", "maize", "cereal", "field"), (245, 215, 60)),
    (("pasture", "meadow", "grassland", "grass"), (150, 210, 90)),
    (("herbaceous", "shrub", "heath", "moor", "scrub"), (180, 200, 120)),
    (("bare", "rock", "sparse"), (190, 170, 150)),
    (("snow", "ice", "glacier"), (235, 245, 255)),
    (("cloud",), (250, 250, 250)),
]
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
           (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148), (247, 182, 210), (199, 199, 199),
           (219, 219, 141), (158, 218, 229)]


# The cloud / shadow class (senclip.maps.classmap.CLOUD_VALUE): grey-white, like a cloud on a map.
CLOUD_COLOR = (225, 225, 230)


def class_colors(classes: list[str]) -> list[tuple[int, int, int]]:
    used: set[tuple[int, int, int]] = set()
    out = []
    for name in classes:
        low = name.lower()
        color = next((c for keys, c in KEYWORDS if any(k in low for k in keys) and c not in used), None)
        if color is None:
            color = next((c for c in PALETTE if c not in used), None)
        if color is None:  # more classes than colours: spread hues deterministically
            i = len(out)
            color = ((i * 97) % 256, (i * 57 + 80) % 256, (i * 151 + 160) % 256)
        used.add(color)
        out.append(color)
    return out
