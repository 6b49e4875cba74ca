"""One record of a region map: cell counts, face areas, and optionally the Fiedler score and the
topology summaries. What `reluscope regions` writes, as a library call."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..results import Result
from .dual import FiedlerPartition, fiedler_partition, fiedler_score
from .split import best_straight_cut
from .topology import cell_counts, random_summary, sublevel_summary

if TYPE_CHECKING:
    from ..regions import RegionMap

__all__ = ["RegionSummary", "summarize_regions"]


@dataclass(frozen=True)
class RegionSummary(Result):
    """Counts (V, E, F and the Euler characteristic V - E + F, 1 for a box), face areas, units and
    outputs; `fiedler` (the `fiedler_score` record and the graph variant) and `straight_cut` (the best
    straight cut's, the baseline) when the map has 1 or 2 outputs and more than one face;
    `random_filtration` and `sublevel_filtration` summaries (per face too) when asked for (else None)."""

    n_regions: int
    vertices: int
    edges: int
    faces: int
    euler: int
    area_min: float
    area_median: float
    area_max: float
    n_units: int
    n_outputs: int
    fiedler: dict | None = None
    straight_cut: dict | None = None
    random_filtration: dict | None = None
    sublevel_filtration: dict | None = None


def summarize_regions(region_map: RegionMap, *, fiedler: bool = True, topology: bool = False,
                      partition: FiedlerPartition | None = None) -> RegionSummary:
    """The `RegionSummary` of `region_map` (`partition`: a Fiedler partition already computed)."""
    areas = region_map.areas
    score = cut = None
    if fiedler and region_map.A.shape[1] in (1, 2) and region_map.n_regions > 1:
        part = partition if partition is not None else fiedler_partition(region_map)
        score = {"variant": part.variant.value, **asdict(fiedler_score(region_map, part))}
        cut = asdict(best_straight_cut(region_map))
    rnd = sub = None
    if topology:
        rnd = random_summary(region_map).as_row()
        sub = sublevel_summary(region_map).as_row()
    return RegionSummary(
        n_regions=int(region_map.n_regions), **asdict(cell_counts(region_map)),
        area_min=float(areas.min()), area_median=float(np.median(areas)), area_max=float(areas.max()),
        n_units=int(region_map.patterns.shape[1]), n_outputs=int(region_map.A.shape[1]),
        fiedler=score, straight_cut=cut, random_filtration=rnd, sublevel_filtration=sub,
    )
