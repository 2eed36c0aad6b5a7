"""Hand-picked ImageNet classes that a correct classifier ranks high for sklearn's two sample photos."""

from __future__ import annotations

# ImageNet classes a correct classifier may rank high for each photo (hand-picked, ImageNet-1k indices).
CHINA_STRICT = {
    698: "palace",
    663: "monastery",
    832: "stupa",
    442: "bell tower",
    497: "church",
    668: "mosque",
}
CHINA_PLAUSIBLE = {
    **CHINA_STRICT,
    483: "castle",
    538: "dome",
    975: "lakeshore",
    449: "boathouse",
    437: "lighthouse",
    873: "triumphal arch",
    884: "vault",
    406: "altar",
    857: "throne",
    500: "cliff dwelling",
    624: "library",
    460: "breakwater",
}
FLOWER_STRICT = {985: "daisy", 738: "pot", 883: "vase", 986: "yellow lady's slipper", 984: "rapeseed"}
FLOWER_PLAUSIBLE = {
    **FLOWER_STRICT,
    308: "fly",
    309: "bee",
    310: "ant",
    318: "lacewing",
    321: "admiral",
    322: "ringlet",
    323: "monarch",
    324: "cabbage butterfly",
    325: "sulphur butterfly",
    326: "lycaenid",
    108: "sea anemone",
    947: "mushroom",
    991: "coral fungus",
    992: "agaric",
    989: "hip",
    946: "cardoon",
    599: "honeycomb",
}


def assert_sensible_top5(
    name: str, top5: list[int], strict: dict[int, str], plausible: dict[int, str]
) -> None:
    """Top-1 must be a class the photo shows, and at least 3 of the top 5 plausible ones."""
    hits = [i for i in top5 if i in plausible]
    assert top5[0] in strict, (
        f"{name}: top-1 class {top5[0]} is not one of {sorted(strict.items())}; top-5 {top5}"
    )
    assert len(hits) >= 3, f"{name}: only {hits} of top-5 {top5} are plausible classes"
