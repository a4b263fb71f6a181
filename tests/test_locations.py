"""Locations as typed: relative paths, `~`, `file://` and fsspec URLs mean one place, in every part."""

from __future__ import annotations

import json

import pytest

from dreamstream.collect.config import CollectConfig
from dreamstream.datasets.storage import resolve_location
from dreamstream.errors import UserError
from dreamstream.settings import load_settings
from dreamstream.tracking import resolve_tracking_uri
from dreamstream.train.loop.config import TrainConfig
from dreamstream.train.loop.settings import TrainSettings


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("typed", ["data/x", "./data/x", "data/x/", "{tmp}/data/x", "file://{tmp}/data/x"])
def test_local_spellings_resolve_to_one_absolute_path(in_tmp, typed):
    assert resolve_location(typed.format(tmp=in_tmp)).rstrip("/") == str(in_tmp / "data" / "x")


def test_home_is_expanded(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_location("~/ds") == str(tmp_path / "ds")


@pytest.mark.parametrize("url", ["s3://bucket/ds", "gs://bucket/ds", "memory://ds", "simplecache::s3://b/ds"])
def test_urls_pass_unchanged(url):
    assert resolve_location(url) == url


def test_empty_location_is_an_error():
    with pytest.raises(ValueError, match="empty location"):
        resolve_location("  ")


@pytest.mark.parametrize(("typed", "expected"), [
    ("mlflow.db", "sqlite:///{tmp}/mlflow.db"),
    ("sqlite:///mlflow.db", "sqlite:///{tmp}/mlflow.db"),
    ("sqlite:///{tmp}/a.db", "sqlite:///{tmp}/a.db"),
    ("runs/store.sqlite", "sqlite:///{tmp}/runs/store.sqlite"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_mlflow_stores_name_the_same_store_from_any_directory(in_tmp, typed, expected):
    assert resolve_tracking_uri(typed.format(tmp=in_tmp)) == expected.format(tmp=in_tmp)


def test_a_plain_folder_is_no_mlflow_store(in_tmp):
    with pytest.raises(ValueError, match=r"mlflow_tracking_uri 'mlruns'.*\.db"):
        resolve_tracking_uri("mlruns")


def test_config_locations_are_resolved_where_they_enter(in_tmp):
    train = TrainConfig(data="corpus", test_data="file:///held", mlflow_tracking_uri="m.db")
    assert (train.runs, train.data, train.test_data) == (str(in_tmp / "runs"), str(in_tmp / "corpus"), "/held")
    assert train.mlflow_tracking_uri == f"sqlite:///{in_tmp}/m.db"
    assert CollectConfig(policy="runs/r/snapshots").policy == str(in_tmp / "runs/r/snapshots")
    assert [CollectConfig(policy=name).policy for name in ("random", "expert")] == ["random", "expert"]


def test_a_bad_mlflow_store_names_the_config_key(in_tmp):
    with pytest.raises(UserError, match="train: mlflow_tracking_uri 'mlruns': give a sqlite file"):
        load_settings(TrainSettings, "minigrid_empty", overrides=["train.mlflow_tracking_uri=mlruns"])


def test_run_file_records_absolute_locations(in_tmp, monkeypatch):
    """A run started with relative paths resumes from any directory: run.json holds absolute ones."""
    from dreamstream.cli import main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", "mlflow.db")
    code = main(["train", "--env", "minigrid_empty", "--preset", "debug", "--no-progress", "--offline",
                 "--data", "nowhere", "--run", "runs/r", "--steps", "1"])
    assert code == 2  # no dataset at ./nowhere: a clear error, after the run file was written
    stored = json.loads((in_tmp / "runs/r/run.json").read_text())["settings"]["train"]
    assert stored["data"] == str(in_tmp / "nowhere") and stored["runs"] == str(in_tmp / "runs")
