"""`run_demo`: train the demo networks, run every report section, write the report.

The sections are the modules `reluscope.report.<topic>` named in `_SECTIONS`, each with
`section(ctx: DemoContext) -> Section`. A section that raises is shown in the report as an error
block with its traceback, the other sections still run, and `DemoResult.failed` names it (the CLI
then exits non-zero): nothing is lost silently.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import __version__
from .._checks import single_thread
from ..data import load_mnist, make_toy
from ..network.io import save_model
from ..train import accuracy, mlp, train_classifier
from .base import DemoContext, Section, build_report, check_report_dir

__all__ = ["run_demo", "DemoResult", "train_demo_models"]

_SECTIONS = ("foundation", "folding", "regions", "hull", "tangent", "explore")

# Demo settings: MNIST MLP 784-64-64-10 and a moons MLP 2-16-16-2 (see train_demo_models).
_MNIST_HIDDEN = (64, 64)
_TOY_HIDDEN = (16, 16)
_MNIST_VALIDATION = 5000  # last training images, used only to decide when to stop


@dataclass(frozen=True)
class DemoResult:
    report: Path
    summary: Path
    failed: tuple[str, ...]
    seconds: float


def _log(enabled: bool, message: str) -> None:
    if enabled:
        print(message, file=sys.stderr, flush=True)


def train_demo_models(out: Path, *, seed: int = 0, quick: bool = False, progress: bool = False) -> tuple[DemoContext, dict]:
    """Train both demo networks; returns the context and a JSON-able description of the training."""
    with single_thread():  # tiny MLPs: more threads only wait for each other (up to 20x slower on a busy machine)
        return _train_demo_models(out, seed=seed, quick=quick, progress=progress)


def _train_demo_models(out: Path, *, seed: int, quick: bool, progress: bool) -> tuple[DemoContext, dict]:

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    cut = len(x_train) - _MNIST_VALIDATION
    t0 = time.perf_counter()
    mnist = train_classifier(
        mlp(784, _MNIST_HIDDEN, 10, seed=seed), x_train[:cut], y_train[:cut],
        x_val=x_train[cut:], y_val=y_train[cut:], epochs=2 if quick else 4,
        target_accuracy=0.95 if quick else 0.96, lr=3e-3, batch_size=128, seed=seed, progress=progress,
    )
    mnist_seconds = time.perf_counter() - t0

    toy_x, toy_y = make_toy("moons", 1000, seed=seed)
    val_x, val_y = make_toy("moons", 1000, seed=seed + 1)
    t0 = time.perf_counter()
    toy = train_classifier(
        mlp(2, _TOY_HIDDEN, 2, seed=seed), toy_x, toy_y, x_val=val_x, y_val=val_y,
        epochs=100 if quick else 300, target_accuracy=0.99, lr=1e-2, batch_size=64, seed=seed, progress=progress,
    )
    toy_seconds = time.perf_counter() - t0

    models = {
        "mnist": {
            "architecture": [784, *_MNIST_HIDDEN, 10], "epochs": len(mnist.history), "steps": mnist.steps,
            "validation_accuracy": mnist.final_accuracy, "test_accuracy": accuracy(mnist.model, x_test, y_test),
            "train_seconds": mnist_seconds,
        },
        "moons": {
            "architecture": [2, *_TOY_HIDDEN, 2], "epochs": len(toy.history), "steps": toy.steps,
            "validation_accuracy": toy.final_accuracy, "train_accuracy": accuracy(toy.model, toy_x, toy_y),
            "train_seconds": toy_seconds,
        },
    }
    save_model(mnist.model, out / "models" / "mnist-mlp", metadata=models["mnist"])
    save_model(toy.model, out / "models" / "moons-mlp", metadata=models["moons"])
    ctx = DemoContext(
        out=out, seed=seed, mnist_model=mnist.model, mnist_train=(x_train, y_train),
        mnist_test=(x_test, y_test), toy_model=toy.model, toy_data=(toy_x, toy_y), quick=quick,
    )
    return ctx, models


def _run_section(topic: str, ctx: DemoContext) -> tuple[Section, float]:
    t0 = time.perf_counter()
    try:
        section = importlib.import_module(f"reluscope.report.{topic}").section(ctx)
        if not isinstance(section, Section):
            raise TypeError(f"reluscope.report.{topic}.section returned {type(section).__name__}, expected Section")
    except Exception:  # a failing section must not take the others down; it is reported below
        section = Section(title=f"{topic} (failed)", html="", summary={}, error=traceback.format_exc())
    return section, time.perf_counter() - t0


def run_demo(
    out: str | Path,
    *,
    seed: int = 0,
    quick: bool = False,
    topics: Sequence[str] | None = None,
    progress: bool = False,
) -> DemoResult:
    """Train the demo networks, run the report sections, write `out/report.html` and `out/summary.json`.

    `topics` restricts the sections (default: all of `_SECTIONS`, in order); `quick` asks every
    section for smaller settings. Progress lines go to stderr when `progress`.
    """
    chosen = list(_SECTIONS) if topics is None else list(topics)
    unknown = [t for t in chosen if t not in _SECTIONS]
    if unknown:
        raise ValueError(f"topics: unknown sections {unknown}; available: {', '.join(_SECTIONS)}")
    out = Path(out)
    check_report_dir(out, topics=chosen)  # before training: never overwrite the user's files
    start = time.perf_counter()
    _log(progress, f"reluscope demo: training the demo networks (seed {seed}{', quick' if quick else ''})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # sections that forget to pass a generator stay reproducible
        ctx, models = train_demo_models(out, seed=seed, quick=quick, progress=progress)
        _log(progress, f"  MNIST MLP test accuracy {models['mnist']['test_accuracy']:.4f}, "
                       f"moons MLP validation accuracy {models['moons']['validation_accuracy']:.4f}")
        sections, timings, failed = {}, {}, []
        for i, topic in enumerate(chosen, 1):
            _log(progress, f"[{i}/{len(chosen)}] {topic} ...")
            section, seconds = _run_section(topic, ctx)
            sections[topic], timings[topic] = section, round(seconds, 2)
            if section.error:
                failed.append(topic)
            _log(progress, f"[{i}/{len(chosen)}] {topic}: {'FAILED' if section.error else 'done'} in {seconds:.1f} s")
    total = time.perf_counter() - start

    meta = {
        "reluscope_version": __version__, "seed": seed, "quick": quick, "seconds_total": round(total, 1),
        "torch_version": torch.__version__, "failed_sections": failed, "section_seconds": timings, "models": models,
    }
    report, summary = build_report(sections, out, title="reluscope demo report", meta=meta)
    return DemoResult(report, summary, tuple(failed), total)
