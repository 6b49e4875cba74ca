"""Region commands: `reluscope regions`, `reluscope experiment topo-binary`, `topo-regression`."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..data import fit_to_model, load_dataset
from ._common import emit_json, save_figure, user_errors

__all__ = ["register", "regions", "topo_binary", "topo_regression"]


def _floats(text: str, name: str, n: int) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise ValueError(f"{name}: expected {n} comma-separated numbers, got {text!r}") from None
    if len(vals) != n:
        raise ValueError(f"{name}: expected {n} comma-separated numbers, got {text!r}")
    return vals



@user_errors
def regions(
    model_path: Annotated[Path, typer.Argument(metavar="MODEL", help="Model saved by `reluscope train` / save_model (path without suffix).")],
    out: Annotated[Path, typer.Option(help="Output JSON file (counts, areas, timing, Fiedler score, topology).")],
    box: Annotated[Optional[str], typer.Option(help="xmin,xmax,ymin,ymax (plane coordinates with --data). Default: -1,1,-1,1, or around the three points.")] = None,
    data_name: Annotated[Optional[str], typer.Option("--data", help="For inputs of more than 2 numbers: the data set whose three inputs span the plane (mnist, fashion-mnist, digits).")] = None,
    points: Annotated[str, typer.Option(help="Indices of the three inputs (test split) spanning the plane.")] = "0,1,2",
    figure: Annotated[list[Path], typer.Option(help="Figure path(s): .png, .svg or .pdf (repeatable).")] = [],  # noqa: B006
    fiedler: Annotated[bool, typer.Option(help="Fiedler partition of the dual graph and its agreement with the decision (1 or 2 outputs).")] = True,
    topology: Annotated[bool, typer.Option(help="Betti summaries of random and output-sublevel filtrations.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    memory_budget: Annotated[float, typer.Option(help="Refuse when the estimated working memory exceeds this many bytes.")] = 2 * 1024**3,
):
    """Exact linear regions of a 2-D slice of a model: JSON summary plus an optional PNG/SVG."""
    import numpy as np

    from ._common import load_user_model as load_model
    from ..regions import Plane, fiedler_partition, fiedler_score, regions_2d
    from ..regions.topology import cell_counts, random_summary, sublevel_summary

    model = load_model(model_path)
    plane = None
    if data_name is not None:
        idx = [int(i) for i in _floats(points, "points", 3)]
        x, _ = load_dataset(data_name, "test")
        if not all(0 <= i < len(x) for i in idx):
            raise ValueError(f"points: expected indices in [0, {len(x)}), got {points!r}")
        x = fit_to_model(model, x[idx], data_name)
        plane = Plane.through_points(x[0], x[1], x[2])
    chosen_box = _floats(box, "box", 4) if box is not None else (None if plane is not None else (-1.0, 1.0, -1.0, 1.0))
    t0 = time.perf_counter()
    rm = regions_2d(model, box=chosen_box, plane=plane, device=device, memory_budget=memory_budget, progress=True)
    seconds = time.perf_counter() - t0
    summary = {
        "model": model_path, "box": rm.box, "plane": None if plane is None else {"data": data_name, "points": points},
        **cell_counts(rm), "n_regions": rm.n_regions, "seconds": seconds,
        "area_min": float(rm.areas.min()), "area_median": float(np.median(rm.areas)), "area_max": float(rm.areas.max()),
        "n_units": int(rm.patterns.shape[1]), "n_outputs": int(rm.A.shape[1]),
    }
    part = None
    if fiedler and rm.A.shape[1] in (1, 2) and rm.n_regions > 1:
        part = fiedler_partition(rm)
        summary["fiedler"] = fiedler_score(rm, part)
    if topology:
        rnd = random_summary(rm)
        summary["random_filtration"] = {k: v for k, v in rnd.items() if not isinstance(v, list)}
        summary["sublevel_filtration"] = sublevel_summary(rm)
    for path in figure:
        from ..viz import report_figure
        from ..viz.regions import plot_fiedler, plot_regions

        fig, axes = report_figure(1, 2 if part is not None else 1, figsize=(10 if part is not None else 5, 5))
        axes = np.atleast_1d(axes)
        plot_regions(rm, ax=axes[0], decision_boundary=rm.A.shape[1] in (1, 2))
        if part is not None:
            plot_fiedler(rm, part, ax=axes[1])
        save_figure(fig, path)
    summary["figures"] = list(figure)
    emit_json(summary, out)


@user_errors(out="folder")
def topo_binary(
    out: Annotated[Path, typer.Option(help="Output folder (topo_binary.json/.csv and PNG figures).")] = Path("out/topo-binary"),
    epochs: Annotated[int, typer.Option(help="Training epochs (long, with weight decay).")] = 1500,
    every: Annotated[int, typer.Option(help="Optimiser steps between measurements.")] = 300,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 1e-3,
    data_name: Annotated[str, typer.Option("--data", help="Binary 2-D toy set: moons, circles, xor, spirals.")] = "moons",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
):
    """Binary 2-D task trained long with weight decay: Fiedler agreement with the decision over training."""
    from ..experiments.topology import TopoBinaryConfig, run_topo_binary, write_topo_outputs

    cfg = TopoBinaryConfig(data=data_name, epochs=epochs, every=every, weight_decay=weight_decay, seed=seed)
    result = run_topo_binary(cfg, progress=True)
    files = write_topo_outputs(result, out, name="topo_binary")
    emit_json({"summary": result.summary, "files": files})


@user_errors(out="folder")
def topo_regression(
    out: Annotated[Path, typer.Option(help="Output folder (topo_regression.json/.csv and PNG figures).")] = Path("out/topo-regression"),
    steps: Annotated[int, typer.Option(help="Optimiser steps.")] = 3000,
    every: Annotated[int, typer.Option(help="Steps between measurements.")] = 50,
    lr: Annotated[float, typer.Option(help="Adam learning rate (large enough for loss spikes).")] = 1e-2,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
):
    """2-D regression: cell counts and Betti summaries against the training loss."""
    from ..experiments.topology import TopoRegressionConfig, run_topo_regression, write_topo_outputs

    cfg = TopoRegressionConfig(steps=steps, every=every, lr=lr, seed=seed)
    result = run_topo_regression(cfg, progress=True)
    files = write_topo_outputs(result, out, name="topo_regression")
    emit_json({"summary": result.summary, "files": files})


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `regions` to `app` and the two topology experiments to `experiment`."""
    app.command("regions")(regions)
    experiment.command("topo-binary")(topo_binary)
    experiment.command("topo-regression")(topo_regression)
