"""The files that `dreamstream dream` writes, from Python too:

    report = write_report(load_model(url), Dataset(root), Path("out"), episode=None, start=10, horizon=15)
    report.files, report.mean_errors()

See dreamstream.train.dream.command for the list of files and docs/inspection.md for how to read them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from dreamstream.datasets.reader import Dataset
from dreamstream.train.dream.episodes import load_episode, prediction_errors
from dreamstream.train.dream.latents import Latents
from dreamstream.train.dream.model import DreamModel
from dreamstream.train.dream.video import drawable, dream_frames, dream_strip, write_gif, write_png
from dreamstream.train.dream.window import DEFAULT_HORIZON, dream_window

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DreamReport:
    """What was dreamt and measured. rows: the episode rows shown (the last `horizon` observed, then the dreamt)."""

    out: Path
    episode: str
    start: int
    horizon: int
    policy: bool
    rows: np.ndarray
    recon_errors: dict[str, np.ndarray]  # per row of `recon_rows`
    recon_rows: np.ndarray
    open_loop_errors: dict[str, np.ndarray]  # per dreamt row (empty under the policy: no truth to compare)
    posterior: Latents
    dream: Latents
    files: list[Path] = dataclasses.field(default_factory=list)

    def mean_errors(self) -> dict[str, float]:
        """`recon/<key>` over the shown rows and `open_loop/<key>` over the dreamt rows."""
        out = {f"recon/{k}": float(np.mean(v)) for k, v in self.recon_errors.items()}
        out.update({f"open_loop/{k}": float(np.mean(v)) for k, v in self.open_loop_errors.items()})
        return out


def write_report(model: DreamModel, dataset: Dataset, out: Path | None = None, episode: str | None = None,
                 start: int | None = None, horizon: int = DEFAULT_HORIZON, policy: bool = False,
                 fps: float = 4.0) -> DreamReport:
    """Dream one episode of `dataset` (its spec must be the model's) and write every file into `out`."""
    episode_id, rows = load_episode(dataset, episode)
    length = len(rows["reward"])
    start, horizon = dream_window(episode_id, length, start, horizon, policy)
    out = out or Path(f"dream-{episode_id}-{start}")
    out.mkdir(parents=True, exist_ok=True)

    posterior = model.encode(rows)
    if policy:
        dream = model.imagine(posterior, start, horizon=horizon, greedy=True)
    else:
        dream = model.imagine(posterior, start, actions=rows["action"][start + 1 : start + 1 + horizon])
    first = max(0, start + 1 - horizon)
    shown = np.arange(first, start + 1 + horizon)
    recon_rows = shown[shown < length] if not policy else np.arange(first, start + 1)
    recon = model.decode(posterior[recon_rows])
    predicted = model.decode(dream)
    recon_errors = prediction_errors(model.spec, rows, recon, recon_rows)
    open_loop_errors = {} if policy else prediction_errors(model.spec, rows, predicted, dream.steps)
    report = DreamReport(out, episode_id, start, horizon, policy, shown, recon_errors, recon_rows,
                         open_loop_errors, posterior, dream)

    observed = start + 1 - first
    imagined = shown > start
    fields = {n: model.spec.observations[n] for n in model.decoded_fields if drawable(model.spec.observations[n])}
    if fields:
        truth, recon_col, dream_col = {}, {}, {}
        for name in fields:
            blank = np.zeros((len(shown) - len(recon_rows), *rows[name].shape[1:]), rows[name].dtype)
            truth[name] = np.concatenate([rows[name][recon_rows], blank])
            recon_col[name] = np.concatenate([recon[name], blank])
            dream_col[name] = np.concatenate([recon[name][:observed], predicted[name]])
        report.files.append(write_gif(out / "dream.gif", dream_frames(fields, [truth], [recon_col], [dream_col],
                                                                      imagined), fps))
        report.files.append(write_png(out / "strip.png", dream_strip(fields, truth, recon_col, dream_col, imagined)))
    else:
        log.warning("no drawable field (image or categorical grid) in %s: no GIF or strip",
                    list(model.spec.observations))
    report.files += _write_errors(report, rows, recon, predicted)
    report.files.append(_write_latents(report, model))
    return report


def _write_errors(report: DreamReport, rows: dict[str, np.ndarray], recon: dict[str, np.ndarray],
                  predicted: dict[str, np.ndarray]) -> list[Path]:
    out, start = report.out, report.start
    keys = list(report.recon_errors)
    recon_at = {int(r): i for i, r in enumerate(report.recon_rows)}
    dream_at = {int(r): i for i, r in enumerate(report.dream.steps)}
    table = []
    for row in report.rows.tolist():
        entry: dict[str, object] = {"row": row, "phase": "imagined" if row > start else "observed",
                                    "steps_ahead": max(0, row - start)}
        r, d = recon_at.get(row), dream_at.get(row)
        entry["reward"] = float(rows["reward"][row]) if row < len(rows["reward"]) else None
        entry["recon_reward"] = float(recon["reward"][r]) if r is not None else None
        entry["open_loop_reward"] = float(predicted["reward"][d]) if d is not None else None
        entry["open_loop_cont"] = float(predicted["cont"][d]) if d is not None else None
        for key in keys:
            entry[f"recon_error_{key}"] = float(report.recon_errors[key][r]) if r is not None else None
            errors = report.open_loop_errors.get(key)
            entry[f"open_loop_error_{key}"] = float(errors[d]) if errors is not None and d is not None else None
        table.append(entry)
    csv_path = out / "errors.csv"
    with open(csv_path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in e.items()} for e in table)
    json_path = out / "errors.json"
    json_path.write_text(json.dumps({
        "episode": report.episode, "start": start, "horizon": report.horizon,
        "actions": "policy (greedy)" if report.policy else "recorded",
        "mean": report.mean_errors(), "rows": table,
    }, indent=1))
    return [csv_path, json_path, _plot_errors(report)]


def _plot_errors(report: DreamReport) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(report.recon_errors)
    fig, axes = plt.subplots(len(keys), 1, figsize=(5.5, 0.4 + 1.3 * len(keys)), sharex=True, squeeze=False)
    for ax, key in zip(axes[:, 0], keys, strict=True):
        ax.plot(report.recon_rows, report.recon_errors[key], ".-", color="tab:blue", label="reconstruction")
        if key in report.open_loop_errors:
            ax.plot(report.dream.steps, report.open_loop_errors[key], ".-", color="tab:red", label="open loop")
        ax.axvline(report.start + 0.5, color="grey", lw=0.8, ls="--")
        ax.set_ylabel(key, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    axes[0, 0].set_title(f"episode {report.episode}: rows 0-{report.start} observed", fontsize=8)
    axes[-1, 0].set_xlabel("episode row", fontsize=8)
    fig.tight_layout()
    path = report.out / "errors.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def _write_latents(report: DreamReport, model: DreamModel) -> Path:
    arrays = {**report.posterior.to_numpy("posterior_"), **report.dream.to_numpy("dream_")}
    if model.config.classes:
        arrays["posterior_classes"] = model.classes(report.posterior)
        arrays["dream_classes"] = model.classes(report.dream)
    arrays.update(episode=np.array(report.episode), start=np.array(report.start),
                  checkpoint=np.array(model.url), model_step=np.array(model.step))
    path = report.out / "latents.npz"
    np.savez_compressed(path, **arrays)
    return path
