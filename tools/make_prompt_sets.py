"""Regenerate backend/senclip/resources/prompts/*.json from the phrase lists below.

The prompt sets are ours (not copied from the SenCLIP release): per class a few scene phrases,
expanded with style templates. "ground" describes what a person standing there would photograph
(the SenCLIP idea), "aerial" what a satellite sees, "generic" the plain CLIP-style templates.
Run: python tools/make_prompt_sets.py
"""
import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "backend" / "senclip" / "resources" / "prompts"

GENERIC = ["a photo of {c}.", "a satellite photo of {c}.", "an image of {c}.", "{c}."]

EUROSAT = {
    "Annual Crop Land": {
        "ground": ["a tractor ploughing a wheat field", "rows of young maize plants in brown soil",
                   "a field of ripe barley under a blue sky", "a harvested cereal field with straw stubble",
                   "a flat farm field of sugar beet"],
        "aerial": ["rectangular agricultural fields with crops", "a patchwork of cultivated cropland",
                   "bare ploughed fields and green crop parcels"],
    },
    "Forest": {
        "ground": ["tall trees in a dense forest", "a path through a shady woodland",
                   "tree trunks and a green canopy overhead", "a pine forest with needles on the ground",
                   "a beech forest in summer"],
        "aerial": ["a dense dark green forest canopy", "a large area covered by trees",
                   "woodland with a continuous tree cover"],
    },
    "Herbaceous Vegetation Land": {
        "ground": ["wild grasses and shrubs growing on open land", "a meadow of tall herbs and wildflowers",
                   "uncultivated land covered with low vegetation", "scrubland with bushes and grass"],
        "aerial": ["natural herbaceous vegetation without trees", "open land covered by grass and shrubs",
                   "unmanaged green vegetation"],
    },
    "Highway or Road": {
        "ground": ["cars driving on a highway", "an asphalt road with lane markings",
                   "a motorway crossing the countryside", "a road with a guardrail and traffic signs"],
        "aerial": ["a highway cutting through fields", "a long straight road with vehicles",
                   "a road interchange seen from above"],
    },
    "Industrial Buildings": {
        "ground": ["a large warehouse with loading docks", "a factory with chimneys and metal halls",
                   "an industrial park with trucks", "a logistics centre with a big parking lot"],
        "aerial": ["large flat roofs of industrial buildings", "a commercial and industrial area",
                   "factories and warehouses with parking lots"],
    },
    "Pasture Land": {
        "ground": ["cows grazing on a green pasture", "sheep on a grassy meadow with a fence",
                   "a green field of grass for grazing cattle", "horses in a paddock"],
        "aerial": ["green grassland used as pasture", "meadows and pastures with hedges",
                   "uniform green grass fields"],
    },
    "Permanent Crop Land": {
        "ground": ["rows of grapevines in a vineyard", "an orchard of apple trees",
                   "an olive grove on a hillside", "fruit trees planted in straight lines"],
        "aerial": ["vineyards and orchards in regular rows", "permanent crops such as olive groves",
                   "fields of fruit trees"],
    },
    "Residential Buildings": {
        "ground": ["houses with gardens along a street", "a residential neighbourhood with apartment blocks",
                   "a village street with family homes", "suburban houses with red roofs"],
        "aerial": ["a dense residential area with houses and streets", "an urban neighbourhood",
                   "a town with buildings and gardens"],
    },
    "River": {
        "ground": ["a river flowing between green banks", "a bridge over a wide river",
                   "a boat on a river", "the bank of a calm river with trees"],
        "aerial": ["a winding river through the landscape", "a river with its banks",
                   "a narrow band of water crossing the land"],
    },
    "Sea or Lake": {
        "ground": ["waves on the open sea", "a calm lake with a shoreline",
                   "a sailing boat on a large lake", "a beach at the seaside"],
        "aerial": ["a large body of water", "the sea along a coastline", "a lake surrounded by land"],
    },
}

BIGEARTHNET = {
    "Urban fabric": (["houses and apartment buildings in a town", "a city street with buildings",
                      "a village centre with houses"], ["a built-up urban area", "dense buildings and streets"]),
    "Industrial or commercial units": (["a factory and warehouses", "a shopping centre with a car park",
                                        "an industrial estate with trucks"], ["large industrial roofs and parking lots",
                                                                              "a commercial zone"]),
    "Arable land": (["a tractor ploughing a wheat field", "a field of maize", "a ploughed field of bare soil"],
                    ["cultivated cropland parcels", "agricultural fields with crops"]),
    "Permanent crops": (["rows of grapevines in a vineyard", "an apple orchard", "an olive grove"],
                        ["orchards and vineyards in rows", "permanent tree crops"]),
    "Pastures": (["cows grazing on a green pasture", "sheep on a meadow"], ["green grazing grassland",
                                                                          "pastures divided by hedges"]),
    "Complex cultivation patterns": (["small fields of different crops next to each other",
                                      "a mosaic of gardens, fields and meadows"],
                                     ["a patchwork of small mixed agricultural parcels"]),
    "Land principally occupied by agriculture, with significant areas of natural vegetation": (
        ["farmland mixed with patches of trees and bushes", "fields bordered by natural hedgerows and woods"],
        ["agricultural land interspersed with natural vegetation"]),
    "Agro-forestry areas": (["cattle grazing under scattered oak trees", "crops growing between rows of trees"],
                            ["fields with scattered trees", "a savanna-like landscape of trees and pasture"]),
    "Broad-leaved forest": (["a beech forest with broad green leaves", "an oak woodland",
                             "deciduous trees in autumn colours"], ["a broad-leaved deciduous forest canopy"]),
    "Coniferous forest": (["a dark spruce forest", "tall pine trees with needles", "a fir forest in the mountains"],
                          ["a dark green coniferous forest"]),
    "Mixed forest": (["a forest of pine and birch trees together", "a woodland with both conifers and broad-leaved trees"],
                     ["a mixed forest canopy of conifers and deciduous trees"]),
    "Natural grassland and sparsely vegetated areas": (["dry natural grassland with rocks", "sparse vegetation on stony ground"],
                                                       ["natural grassland with sparse vegetation", "bare rock and sparse grass"]),
    "Moors, heathland and sclerophyllous vegetation": (["purple heather on a moor", "dry mediterranean shrubs and bushes"],
                                                       ["heathland and moorland", "low shrub vegetation"]),
    "Transitional woodland, shrub": (["young trees and shrubs growing on a clearing", "a recently cut forest regrowing with bushes"],
                                     ["a clear-cut forest area with regrowth", "shrubland in transition to woodland"]),
    "Beaches, dunes, sands": (["a sandy beach by the sea", "sand dunes with beach grass"], ["a sandy coastline with dunes"]),
    "Inland wetlands": (["a marsh with reeds", "a peat bog with small pools"], ["wetlands and marshes inland"]),
    "Coastal wetlands": (["a salt marsh at the coast", "tidal mudflats"], ["coastal salt marshes and mudflats"]),
    "Inland waters": (["a calm lake with a shoreline", "a river flowing between green banks"], ["a lake or river"]),
    "Marine waters": (["waves on the open sea", "the ocean seen from a boat"], ["the open sea", "marine waters along a coast"]),
}

GROUND_T = ["a ground-level photo of {p}.", "a photo of {p}."]
AERIAL_T = ["a satellite image of {p}.", "an aerial view of {p}."]


def expand(phrases, templates):
    return [t.format(p=p) for p in phrases for t in templates]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    sets = {
        "eurosat": {c: {"ground": v["ground"], "aerial": v["aerial"]} for c, v in EUROSAT.items()},
        "bigearthnet": {c: {"ground": g, "aerial": a} for c, (g, a) in BIGEARTHNET.items()},
    }
    for name, classes in sets.items():
        for style in ("generic", "aerial", "ground"):
            data = {}
            for c, v in classes.items():
                if style == "generic":
                    data[c] = [t.format(c=c.lower()) for t in GENERIC]
                elif style == "aerial":
                    data[c] = expand(v["aerial"], AERIAL_T)
                else:
                    data[c] = expand(v["ground"], GROUND_T)
            (OUT / f"{name}_{style}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
