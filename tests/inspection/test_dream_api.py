"""The inspection API (dreamstream.train.dream.api) on a tiny model trained on the square world."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch
from inspection_helpers import CONFIG, MOVES, Trained, square_episode, square_spec, write_dataset

from dreamstream.datasets import Dataset
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec
from dreamstream.errors import UserError
from dreamstream.train.dream.api import CHECKPOINT, SNAPSHOT, DreamModel, load_episode, load_model, prediction_errors
from dreamstream.train.model.agent import Agent


@pytest.fixture(scope="module")
def model(trained: Trained) -> DreamModel:
    return load_model(str(trained.run))


def held_out(n: int = 6) -> list[dict[str, np.ndarray]]:
    return [square_episode(np.random.default_rng(1000 + i)) for i in range(n)]


def test_trained_posterior_reconstructs_better_than_untrained(trained: Trained, model: DreamModel) -> None:
    torch.manual_seed(0)
    untrained = DreamModel(Agent(square_spec(), CONFIG), CHECKPOINT, "untrained", 0)
    data = Dataset(trained.data)
    _, episode = load_episode(data)  # a training episode, read back from the dataset
    rows = np.arange(len(episode["reward"]))

    def error(m: DreamModel) -> float:
        return float(prediction_errors(m.spec, episode, m.decode(m.encode(episode)), rows)["image"].mean())

    trained_error, untrained_error = error(model), error(untrained)
    assert trained_error < 0.1 * untrained_error, (trained_error, untrained_error)
    # The square is where the frame says: its cell is the brightest in the reconstruction too.
    recon = model.decode(model.encode(episode))["image"]
    cells = lambda x: x.reshape(len(x), 4, 4, 4, 4, 3).mean((2, 4, 5)).reshape(len(x), 16).argmax(1)  # noqa: E731
    assert np.mean(cells(recon) == cells(episode["image"])) > 0.9


def test_open_loop_error_grows_with_horizon(model: DreamModel) -> None:
    horizon, by_step = 8, []
    for episode in held_out():
        post = model.encode(episode)
        for start in (2, 8, 14, 20):
            dream = model.open_loop(episode, post, start, horizon)
            assert dream.steps.tolist() == list(range(start + 1, start + 1 + horizon))
            by_step.append(prediction_errors(model.spec, episode, model.decode(dream), dream.steps)["image"])
    mean = np.mean(by_step, 0)
    recon = np.mean([prediction_errors(model.spec, e, model.decode(model.encode(e)), np.arange(30))["image"].mean()
                     for e in held_out()])
    assert recon < mean[0] < mean[-3:].mean(), (recon, mean)
    assert mean[-3:].mean() > 1.5 * mean[0], mean
    assert np.corrcoef(np.arange(horizon), mean)[0, 1] > 0.7, mean


def test_imagine_continues_the_posterior_under_recorded_and_policy_actions(model: DreamModel) -> None:
    episode = held_out(1)[0]
    post = model.encode(episode)
    # The first imagined state's deterministic part is the posterior's next h (same h, z, action).
    dream = model.imagine(post, 5, actions=episode["action"][6:9])
    assert len(dream) == 3 and dream.steps.tolist() == [6, 7, 8]
    torch.testing.assert_close(dream.deter[0], post.deter[6])
    assert dream.actions.tolist() == episode["action"][6:9].tolist()
    mine = model.imagine(post, 5, horizon=4)
    assert len(mine) == 4 and mine.actions.shape == (4,) and set(mine.actions.tolist()) <= set(range(len(MOVES)))
    with pytest.raises(UserError, match="needs `actions` or a `horizon`"):
        model.imagine(post, 5)
    with pytest.raises(UserError, match="outside the 30 given states"):
        model.imagine(post, 30, horizon=2)


def test_intervention_changes_the_decoded_observation(model: DreamModel) -> None:
    episode = held_out(1)[0]
    post = model.encode(episode)
    before = model.decode(post)["image"].astype(np.int16)
    classes = model.classes(post)
    assert classes.shape == (30, CONFIG.stoch)
    # Setting every variable to the class it already has changes nothing (the check below can fail) ...
    same = post
    for variable in range(CONFIG.stoch):
        same = model.intervene(same, variable, int(classes[12, variable]), steps=[12])
    np.testing.assert_array_equal(model.decode(same)["image"], before)
    # ... and another class for each variable changes row 12's decoded frame, and only row 12.
    changed = 0
    for variable in range(CONFIG.stoch):
        value = (int(classes[12, variable]) + 1) % CONFIG.classes
        edited = model.intervene(post, variable, value, steps=[12])
        assert model.classes(edited)[12, variable] == value
        after = model.decode(edited)["image"].astype(np.int16)
        np.testing.assert_array_equal(np.delete(after, 12, 0), np.delete(before, 12, 0))
        changed += int(np.abs(after[12] - before[12]).mean() > 1.0)
    assert changed >= CONFIG.stoch // 2, changed
    with pytest.raises(UserError, match="variable 8 does not exist"):
        model.intervene(post, CONFIG.stoch, 0)
    with pytest.raises(UserError, match="class 8 does not exist"):
        model.intervene(post, 0, CONFIG.classes)


def test_decode_predicts_reward_and_continuation(model: DreamModel) -> None:
    episode = held_out(1)[0]
    decoded = model.decode(model.encode(episode))
    assert decoded["reward"].shape == (30,) and decoded["cont"].shape == (30,)
    assert decoded["image"].dtype == np.uint8 and decoded["image"].shape == (30, 16, 16, 3)
    assert ((decoded["cont"] > 0) & (decoded["cont"] <= 1)).all()


def test_every_kind_of_url_loads_the_same_checkpoint(trained: Trained, model: DreamModel, tmp_path) -> None:
    name = f"checkpoint-{trained.step:09d}.pt"
    for url in (str(trained.run / "checkpoints"), str(trained.run / "checkpoints" / name),
                f"file://{trained.run}/"):
        other = load_model(url)
        assert other.kind == CHECKPOINT and other.step == trained.step
        for key, value in other.agent.state_dict().items():
            torch.testing.assert_close(value, model.agent.state_dict()[key], rtol=0, atol=0)
    # A run copied without its snapshots: the spec comes from run.json's training data instead.
    bare = tmp_path / "bare"
    shutil.copytree(trained.run, bare)
    shutil.rmtree(bare / "snapshots")
    assert load_model(str(bare)).spec == model.spec


def test_a_snapshot_encodes_and_imagines_but_cannot_decode(trained: Trained, model: DreamModel) -> None:
    snapshot = load_model(str(trained.run / "snapshots"))
    assert snapshot.kind == SNAPSHOT and not snapshot.can_decode and snapshot.step == trained.step
    episode = held_out(1)[0]
    post, reference = snapshot.encode(episode), model.encode(episode)
    torch.testing.assert_close(post.deter, reference.deter)
    torch.testing.assert_close(snapshot.imagine(post, 3, horizon=2).deter, model.imagine(reference, 3, horizon=2).deter)
    with pytest.raises(UserError, match="policy snapshot .* needs a checkpoint"):
        snapshot.decode(post)


def test_bad_arguments_give_clear_errors(trained: Trained, model: DreamModel, tmp_path) -> None:
    with pytest.raises(UserError, match="no checkpoint at .*missing: expected a .pt file"):
        load_model(str(tmp_path / "missing"))
    with pytest.raises(UserError, match=r"no checkpoint at .*nope\.pt: the file does not exist"):
        load_model(str(tmp_path / "nope.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="cannot be loaded with torch.load"):
        load_model(str(tmp_path / "junk.pt"))

    data = Dataset(trained.data)
    with pytest.raises(UserError, match=r"episode 'nope' is not in dataset .* 24 episodes, e\.g\. [0-9a-f]{16}, "):
        load_episode(data, "nope")

    other_spec = EpisodeSpec(observations=square_spec().observations, action=ActionSpec(kind="discrete", n=3))
    other = write_dataset(tmp_path / "other", [], spec=other_spec)
    with pytest.raises(UserError, match=r"does not match the spec .* action \{'kind': 'discrete', 'n': 3\}, "
                                        r"not \{'kind': 'discrete', 'n': 5\}"):
        model.check_spec(Dataset(other).spec, f"dataset {other}")
    model.check_spec(data.spec, "the training data")  # the right one passes
