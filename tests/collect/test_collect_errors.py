"""Bad input: one line that says what and where, exit code 2, nothing written."""

from __future__ import annotations

import pytest

from dreamstream.cli import main


def fails(capsys, *args: str) -> str:
    assert main(["collect", "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dreamstream collect: error: ")
    return err


def test_unknown_env(capsys, tmp_path):
    err = fails(capsys, "--env", "NoSuchEnv-v0", "--out", str(tmp_path / "ds"))
    assert "unknown env 'NoSuchEnv-v0'" in err and "presets:" in err
    assert not (tmp_path / "ds").exists()


def test_misspelt_preset_suggests_the_preset(capsys, tmp_path):
    err = fails(capsys, "--env", "atari_pongg", "--out", str(tmp_path / "ds"))
    assert "did you mean the preset 'atari_pong'" in err


def test_missing_preset_file(capsys, tmp_path):
    err = fails(capsys, "--env", str(tmp_path / "mine.yaml"), "--out", str(tmp_path / "ds"))
    assert "mine.yaml" in err and "does not exist" in err


def test_unknown_setting_names_the_nearest(capsys, tmp_path):
    err = fails(capsys, "--env", "cartpole", "--out", str(tmp_path / "ds"), "--set", "env.grayscal=true")
    assert "'env.grayscal'" in err and "grayscale" in err


def test_unwritable_output(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    err = fails(capsys, "--env", "cartpole", "--out", str(blocker / "ds"))
    assert "cannot write to" in err and str(blocker / "ds") in err


def test_missing_bucket(capsys, s3_endpoint):
    err = fails(capsys, "--env", "cartpole", "--out", "s3://no-such-bucket-dreamstream/ds")
    assert "s3://no-such-bucket-dreamstream/ds" in err


def test_expert_needs_minigrid(capsys, tmp_path):
    err = fails(capsys, "--env", "cartpole", "--out", str(tmp_path / "ds"), "--policy", "expert")
    assert "MiniGrid" in err and "CartPole-v1" in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("policy", ["absolute", "relative", "file_url"])
def test_a_policy_that_is_not_a_name_is_a_snapshot_location(capsys, tmp_path, monkeypatch, policy):
    """`greedy` is no policy name, so it is the folder ./greedy, in every spelling of a location."""
    monkeypatch.chdir(tmp_path)
    url = {"absolute": str(tmp_path / "greedy"), "relative": "greedy", "file_url": f"file://{tmp_path}/greedy"}[policy]
    err = fails(capsys, "--env", "cartpole", "--out", "ds", "--policy", url)
    assert f"no policy snapshot at {tmp_path / 'greedy'}/latest.json" in err
    assert "'random', 'expert'" in err
    assert not (tmp_path / "ds").exists()


def test_gymnasium_env_that_cannot_be_made(capsys, tmp_path):
    err = fails(capsys, "--env", "CartPole-v1", "--out", str(tmp_path / "ds"), "--set", "env.make_kwargs={bogus: 1}")
    assert "CartPole-v1" in err
