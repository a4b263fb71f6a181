"""`dreamstream dream` end to end (the real CLI in a subprocess) and its one-line errors (in process)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from inspection_helpers import CONFIG, Trained, square_spec, write_dataset

from dreamstream.cli import main
from dreamstream.datasets import Dataset
from dreamstream.datasets.spec import EpisodeSpec, FieldSpec
from dreamstream.train.dream.api import episode_ids

FILES = ["dream.gif", "strip.png", "errors.csv", "errors.json", "errors.png", "latents.npz"]


def test_dream_writes_its_files_and_logs_them_to_mlflow(trained: Trained, tmp_path: Path, mlflow_uri: str,
                                                       dreamstream) -> None:
    from mlflow.tracking import MlflowClient

    from dreamstream.tracking import MlflowRun

    run_id = MlflowRun(mlflow_uri, run_name="dream-test").run_id
    episode = episode_ids(Dataset(trained.data))[3]
    out = tmp_path / "out"
    result = dreamstream("dream", "--checkpoint", str(trained.run), "--data", trained.data, "--episode", episode,
                         "--start", "5", "--horizon", "8", "--out", str(out), "--mlflow-run", run_id)
    assert f"episode {episode}, rows 0-5 observed, 8 imagined" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)

    # Rows 0..5 observed, 6..13 dreamt: one GIF frame per row; the strip has a column per row.
    frames = iio.imread(out / "dream.gif")
    assert frames.shape[0] == 14 and frames.shape[2] == 3 * 64 + 7 * 2
    strip = iio.imread(out / "strip.png")
    assert strip.shape[1] == 36 + 14 * (64 + 2) + 2
    with open(out / "errors.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["row"] for r in rows] == [str(i) for i in range(14)]
    assert [r["phase"] for r in rows] == ["observed"] * 6 + ["imagined"] * 8
    assert all(r["open_loop_error_image"] == "" for r in rows[:6]) and all(r["open_loop_error_image"] for r in rows[6:])
    summary = json.loads((out / "errors.json").read_text())
    assert summary["episode"] == episode and summary["actions"] == "recorded"
    assert summary["mean"]["recon/image"] < summary["mean"]["open_loop/image"]
    assert iio.imread(out / "errors.png").ndim == 3

    latents = np.load(out / "latents.npz", allow_pickle=False)
    assert latents["posterior_deter"].shape == (30, CONFIG.deter)
    assert latents["posterior_classes"].shape == (30, CONFIG.stoch)
    assert latents["dream_deter"].shape == (8, CONFIG.deter) and latents["dream_steps"].tolist() == list(range(6, 14))
    assert str(latents["episode"]) == episode and int(latents["start"]) == 5

    client = MlflowClient(mlflow_uri)
    logged = {Path(a.path).name for a in client.list_artifacts(run_id, f"dream/{episode}-5")}
    assert logged == set(FILES)
    metrics = client.get_run(run_id).data.metrics
    assert metrics["dream/open_loop/image"] == pytest.approx(summary["mean"]["open_loop/image"])


def test_dream_under_the_policy(trained: Trained, tmp_path: Path) -> None:
    assert main(["dream", "--checkpoint", str(trained.run / "checkpoints"), "--data", trained.data, "--policy",
                 "--start", "3", "--horizon", "5", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "errors.json").read_text())
    assert summary["actions"] == "policy (greedy)" and summary["start"] == 3
    assert not any(key.startswith("open_loop/") for key in summary["mean"])  # no truth to compare with
    assert iio.imread(tmp_path / "dream.gif").shape[0] == 4 + 5
    assert np.load(tmp_path / "latents.npz")["dream_actions"].shape == (5,)


def dream_error(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["dream", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dreamstream dream: error: ") and "\n" not in err
    return err


def test_dream_errors_are_one_line(trained: Trained, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run, data = str(trained.run), trained.data
    assert "no checkpoint at" in dream_error(capsys, "--checkpoint", str(tmp_path / "none"), "--data", data)
    err = dream_error(capsys, "--checkpoint", run, "--data", data, "--episode", "missing")
    assert "episode 'missing' is not in dataset" in err and episode_ids(Dataset(data))[0] in err
    other = EpisodeSpec(observations={"image": FieldSpec((32, 32, 3), "uint8", "image")}, action=square_spec().action)
    other_data = write_dataset(tmp_path / "other", [], spec=other)
    err = dream_error(capsys, "--checkpoint", run, "--data", other_data)
    assert "does not match the spec" in err
    assert "field 'image' is image uint8 [32, 32, 3], not image uint8 [16, 16, 3]" in err
    err = dream_error(capsys, "--checkpoint", str(trained.run / "snapshots"), "--data", data)
    assert "policy snapshot" in err and "need a checkpoint" in err
    assert "--start 29 is outside episode" in dream_error(capsys, "--checkpoint", run, "--data", data, "--start", "29")
