"""Hull commands: `reluscope hull` and `reluscope experiment hulls`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

from ..data import read_point_file
from ..experiments.hulls import QUICK, format_table, paper_configs, run_hulls_experiment, write_hulls_experiment
from ..hull import hull_distance, layer_hulls, revised_greedy_expansion
from ..viz.hull import plot_nch_layers, plot_rge
from ._common import InputUnreadable, OutJsonOpt, add_commands, address_option, check_workers, emit_json, load_user_model as load_model, save_figure, user_errors, workers_option

__all__ = ["register", "hull", "hulls_experiment", "load_points"]


def load_points(path: Path) -> np.ndarray:
    """A point file: .npy [N, D], or the paper's .txt (first line "N D", then "id v1 ... vD")."""
    if not path.exists():
        raise FileNotFoundError(f"points: no such file {str(path)!r}")
    if path.suffix == ".npy":
        try:
            x = np.load(path, allow_pickle=False)
        except (ValueError, EOFError, OSError) as err:  # pickled, truncated, empty or not an array
            raise InputUnreadable(f"points: {path} is not a numeric .npy file ({err or type(err).__name__})") from None
    elif path.suffix == ".txt":
        x = read_point_file(path)
    else:
        raise ValueError(f"points: expected a .npy or .txt file, got {path.name!r}")
    return np.asarray(x, dtype=np.float64)


@user_errors
def hull(
    source: Annotated[Path, typer.Argument(metavar="SOURCE", help="A point file (.npy, or .txt in the paper's format) or a model saved by save_model (with --layer).")],
    out: OutJsonOpt,
    layer: Annotated[Optional[str], typer.Option(help="Model mode: the layer whose activations to use: a module name (e.g. 3, or 'features.3 input'), see reluscope.activations.")] = None,
    data_name: Annotated[str, typer.Option("--data", help="Model mode: data set (mnist or fashion-mnist).")] = "mnist",
    per_class: Annotated[int, typer.Option(help="Model mode: training points per class (test: half as many).")] = 100,
    inside_distance: Annotated[float, typer.Option("--inside-distance", "--eps", help="Point-file mode: RGE inside tolerance (absolute, in the points' units).")] = 0.03,
    stop: Annotated[float, typer.Option(help="Point-file mode: RGE stops at this minimax distance.")] = 0.06,
    queries: Annotated[Optional[Path], typer.Option(help="Point-file mode: also report distances of these points to the hull.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data subset.")] = 0,
    plot: Annotated[Optional[Path], typer.Option(help="Also write a figure (PNG): the RGE hull for 2-D points, NCH accuracy for a model.")] = None,
):
    """Approximate a point set's convex hull by Revised Greedy Expansion, or (with --layer) measure
    the class hulls of a layer's activations: crucial points, misinclusion, nearest-hull accuracy."""
    if layer is None:
        x = load_points(source)
        try:
            res = revised_greedy_expansion(x, inside_distance=inside_distance, stop=stop, progress=True)
        except ValueError as err:
            raise ValueError(str(err).replace("inside_distance:", "--inside-distance:", 1)) from err
        result = {"source": str(source), "n_points": int(x.shape[0]), "dim": int(x.shape[1]),
                  "indices": res.indices, "size": res.size, "error": res.error,
                  "seconds": res.seconds, "history": res.history}
        if queries is not None:
            result["query_distances"] = hull_distance(x, load_points(queries))
        if plot is not None and x.shape[1] == 2:
            save_figure(plot_rge(x, res.indices, title=source.stem).figure, plot)
        emit_json(result, out)
        return
    try:
        res = layer_hulls(load_model(source), layer, data=data_name, per_class=per_class, seed=seed)
    except ValueError as err:
        raise ValueError(str(err).replace("layer:", "--layer:", 1).replace("data:", "--data:", 1)) from err
    geo, rows = res.geometry, [res.report]
    result = {"source": str(source), "layer": layer, "data": data_name, "per_class": per_class,
              "crucial_share": dict(zip(geo.classes.tolist(), geo.crucial.tolist())),
              "misinclusion_train": geo.misinclusion_train, "misinclusion_test": geo.misinclusion_test,
              "report": vars(rows[0])}
    if plot is not None:
        save_figure(plot_nch_layers(rows).figure, plot)
    emit_json(result, out)


@user_errors
def hulls_experiment(
    out: Annotated[Path, typer.Option(help="Output JSON file (per-layer rows, chosen layers, summary); the sweep's rows go to OUT-STEM-sweep/ (a rerun resumes from them).")],
    full: Annotated[bool, typer.Option(help="Paper scale: 4 x 1024 ReLU and sigmoid MLPs, full data, hulls of up to 6,000 points per class, 3 seeds (hours).")] = False,
    datasets: Annotated[str, typer.Option(help="Comma-separated: mnist, fashion-mnist.")] = "mnist,fashion-mnist",
    seed: Annotated[int, typer.Option(help="Seed of data subsets and training (quick scale).")] = 0,
    address: address_option("nets") = None,
    workers: workers_option("nets") = None,
):
    """NCH accuracy per hidden layer vs the network's (Jia et al.), the layer chosen on a validation
    split held out of training, never on the test set."""
    names = tuple(datasets.split(","))
    configs = paper_configs() if full else [replace(c, seed=seed) for c in QUICK]
    configs = [c for c in configs if c.dataset in names]
    if not configs:
        raise ValueError(f"--datasets: expected names from 'mnist', 'fashion-mnist', got {datasets!r}")
    check_workers(workers)
    exp = run_hulls_experiment(configs, out=out.parent / f"{out.stem}-sweep", address=address, workers=workers,
                               progress=True)
    typer.echo(format_table(exp), err=True)
    write_hulls_experiment(exp, out)


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add `hull` and `experiment hulls`."""
    add_commands(app, {"hull": hull})
    add_commands(experiment, {"hulls": hulls_experiment})
