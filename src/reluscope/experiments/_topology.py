"""Helpers shared by the topology experiments (grokking, regression): the MLP, frame picking,
the CSV / JSON / figure writers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..io_utils import write_json_atomic, write_text_atomic
from ..train import mlp
from ..viz import report_figure, save_figure
from ..viz.regions import plot_region_frames
from ._common import WrittenFiles, csv_text

_csv = csv_text  # the name grokking imports


def spearman(a, b) -> float:
    """Spearman rank correlation (average ranks for ties); nan when either side is constant."""
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _mlp(widths, seed, scale=1.0):
    model = mlp(widths[0], list(widths[1:-1]), widths[-1], seed=seed)
    if scale != 1.0:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(scale)
    return model


def _pick(frames, k):
    if len(frames) <= k:
        return list(frames)
    idx = np.unique(np.linspace(0, len(frames) - 1, k).round().astype(int))
    return [frames[i] for i in idx]


@dataclass(frozen=True)
class RecordedFiles(WrittenFiles):
    """The files every topology run writes: `name`.json (config, summary, records), `name`.csv
    (one row per record) and `name`_frames.png (the recorded region maps)."""

    json: Path
    csv: Path
    frames: Path


def _write_records(result, out: Path, name: str) -> tuple[list[dict], dict[str, Path]]:
    """Write the run's JSON, CSV and frames; returns its record rows and the files by role."""

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.as_row() for r in result.records]
    doc = {"config": asdict(result.config), "summary": asdict(result.summary), "records": rows}
    return rows, {"json": write_json_atomic(out / f"{name}.json", doc),
                  "csv": write_text_atomic(out / f"{name}.csv", csv_text(rows)),
                  "frames": _write_frames(result.frames, out / f"{name}_frames.png")}


def _save(fig, path: Path) -> Path:
    return save_figure(fig, path, dpi=110)


def _write_frames(frames, path: Path) -> Path:
    """The region maps of the recorded frames side by side, as one PNG."""
    fig, axes = report_figure(1, len(frames), figsize=(2.6 * len(frames), 2.8))
    plot_region_frames(frames, axes=np.atleast_1d(axes))
    return _save(fig, path)
