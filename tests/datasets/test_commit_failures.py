"""The commit protocol under failure, on every store: a failed write can be retried and loses nothing;
the card is created once (conditional create, then read back), so two specs never share a root."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from gymnasium import spaces

from dreamstream.datasets import Dataset, DatasetCard, DatasetError, EpisodeWriter, WriterConfig, spec_from_spaces
from dreamstream.datasets import writer as writer_module
from dreamstream.datasets.card import CARD_NAME
from dreamstream.datasets.storage import AlreadyExists, commit_bytes, open_fs
from dreamstream.datasets.synthetic import random_episode


class StoreFailure(OSError):
    """What a store raises mid-write (a reset connection, a 503)."""


def failing_once(monkeypatch, suffix: str, after_store: bool) -> list[str]:
    """Make the writer's next commit of a file ending in `suffix` raise, before or after the store kept it."""
    real, failed = commit_bytes, []

    def commit(fs, path, data):
        if path.endswith(suffix) and not failed:
            failed.append(path)
            if after_store:
                real(fs, path, data)
            raise StoreFailure(f"connection reset while writing {path}")
        real(fs, path, data)

    monkeypatch.setattr(writer_module, "commit_bytes", commit)
    return failed


def total_steps(url: str) -> int:
    dataset = Dataset(url)
    return sum(len(chunk.arrays["reward"]) for chunk in dataset.chunks())


@pytest.mark.parametrize(("suffix", "after_store"), [(".json", False), (".json", True), (".tar", False),
                                                     (".tar", True)],
                         ids=["record-lost", "record-stored", "shard-lost", "shard-stored"])
def test_a_failed_commit_is_retried_and_nothing_later_is_lost(store_url, card, spec, monkeypatch, suffix,
                                                              after_store):
    rng = np.random.default_rng(0)
    failed = failing_once(monkeypatch, suffix, after_store)
    writer = EpisodeWriter(store_url, card, WriterConfig(chunk_steps=10))
    writer.add_episode(random_episode(spec, 25, rng))
    with pytest.raises(StoreFailure):
        writer.commit()
    visible = suffix == ".json" and after_store  # the store kept the record although the call failed
    assert failed and len(Dataset(store_url).record_names()) == visible

    writer.add_episode(random_episode(spec, 17, rng))  # rows added after the failure
    first = writer.commit()  # retries the failed shard first, then commits the new one
    writer.add_episode(random_episode(spec, 8, rng))
    writer.close()

    records = Dataset(store_url).records()
    assert [r.name for r in records] == [r.name for r in writer.committed]
    assert [r.steps for r in records] == [25, 17, 8]
    assert first is not None and first.steps == 17
    assert total_steps(store_url) == 25 + 17 + 8


def test_rows_added_while_the_store_is_down_are_kept(tmp_path, card, spec, monkeypatch):
    """Several failed commits in a row (a store outage): each sealed shard waits, in order."""
    url, rng = str(tmp_path / "ds"), np.random.default_rng(1)
    real = commit_bytes
    down = [True]

    def commit(fs, path, data):
        if down[0]:
            raise StoreFailure("503 Slow Down")
        real(fs, path, data)

    monkeypatch.setattr(writer_module, "commit_bytes", commit)
    writer = EpisodeWriter(url, card, WriterConfig(chunk_steps=10))
    for length in (5, 6, 7):
        writer.add_episode(random_episode(spec, length, rng))
        with pytest.raises(StoreFailure):
            writer.commit()
    down[0] = False
    writer.close()
    assert [r.steps for r in Dataset(url).records()] == [5, 6, 7]


def test_a_retry_refuses_a_file_with_other_content(tmp_path, card, spec, monkeypatch):
    """The retry accepts only its own earlier write; anything else under its name is an error, not data."""
    url, rng = str(tmp_path / "ds"), np.random.default_rng(2)
    failed = failing_once(monkeypatch, ".tar", after_store=False)
    writer = EpisodeWriter(url, card, WriterConfig(chunk_steps=10))
    writer.add_episode(random_episode(spec, 5, rng))
    with pytest.raises(StoreFailure):
        writer.commit()
    (tmp_path / "ds" / "shards").mkdir()
    open_fs(url)[0].pipe_file(failed[0], b"someone else's bytes")
    with pytest.raises(DatasetError, match="exists with other content"):
        writer.commit()


def other_spec() -> object:
    return spec_from_spaces(spaces.Dict(obs=spaces.Box(0, 1, (3,), np.float32)), spaces.Discrete(2))


def test_second_spec_in_a_root_is_refused(store_url, card):
    EpisodeWriter(store_url, card)
    with pytest.raises(DatasetError, match=r"dataset .*different spec"):
        EpisodeWriter(store_url, DatasetCard.create(other_spec(), env_id="Other-v0"))
    assert Dataset(store_url).card.spec == card.spec


def blind_prechecks(monkeypatch, fs, suffix: str) -> None:
    """dreamstream's own existence checks miss files ending in `suffix`, as if a racing writer created
    them just after the check; the store's own checks (the conditional create) still see them."""
    real = fs.exists

    def exists(path, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if path.endswith(suffix) and caller.startswith("dreamstream."):
            return False
        return real(path, **kwargs)

    monkeypatch.setattr(fs, "exists", exists)


def conditional_create_holds(url: str, monkeypatch) -> bool:
    """Commit a file twice, the second time past our existence check: does the store refuse the second
    create? False where the store overwrote."""
    fs, root = open_fs(url)
    path = f"{root}/probe"
    commit_bytes(fs, path, b"first")
    blind_prechecks(monkeypatch, fs, "/probe")
    try:
        commit_bytes(fs, path, b"second")
        refused = False
    except AlreadyExists:
        refused = True
    fs.invalidate_cache()
    assert fs.cat_file(path) == (b"first" if refused else b"second")
    return refused


# What each store does with a create-if-absent (docs/format.md, "Creating the card"). The GCS emulator
# ignores ifGenerationMatch=0 (real GCS honours it); the read-back and check_card catch what it lets by.
CONDITIONAL = {"local": True, "file": True, "memory": True, "s3": True, "gcs": False}


def test_conditional_create_on_each_store(store_url, request, monkeypatch):
    kind = request.node.callspec.params["store_url"]
    assert conditional_create_holds(store_url, monkeypatch) is CONDITIONAL[kind]


def test_racing_writers_with_different_specs_never_both_commit(store_url, card, spec, monkeypatch):
    """Both writers saw no card (the race the existence check cannot close). Wherever the store's create
    is conditional the second writer fails at once; where it is not, the read-back or the first writer's
    next commit does. Either way every committed shard matches the card."""
    rng = np.random.default_rng(3)
    first = EpisodeWriter(store_url, card, WriterConfig(chunk_steps=10))
    fs = first.fs
    blind_prechecks(monkeypatch, fs, CARD_NAME)
    failures = 0
    try:
        EpisodeWriter(store_url, DatasetCard.create(other_spec(), env_id="Other-v0"))
    except DatasetError as exc:
        assert "different spec" in str(exc) and store_url.split("://")[-1] in str(exc)
        failures += 1
    monkeypatch.undo()
    fs.invalidate_cache()
    first.add_episode(random_episode(spec, 12, rng))
    try:
        first.commit()
    except DatasetError as exc:
        assert "changed after this writer joined" in str(exc)
        failures += 1
    assert failures == 1
    dataset = Dataset(store_url)
    for chunk in dataset.chunks():  # whatever was committed matches the card in force
        assert set(chunk.arrays) == set(dataset.spec.fields)


@pytest.mark.parametrize("by", ["episode", "step"])
def test_the_writer_commits_before_a_shard_passes_the_format_limits(tmp_path, card, spec, monkeypatch, by):
    """Readers refuse records over MAX_SAMPLES samples or MAX_RECORD_STEPS steps, so the writer never
    makes one, whatever its byte and age limits say (whole episodes, or steps from three slots)."""
    monkeypatch.setattr(writer_module, "MAX_SAMPLES", 6)
    monkeypatch.setattr(writer_module, "MAX_RECORD_STEPS", 40)
    url, rng = str(tmp_path / "ds"), np.random.default_rng(4)
    episodes = [random_episode(spec, n, rng) for n in (9, 30, 3, 3, 3, 3, 3, 14)]
    with EpisodeWriter(url, card, WriterConfig(chunk_steps=4, shard_max_bytes=2**40)) as writer:
        if by == "episode":
            for episode in episodes:
                writer.add_episode(episode)
        else:
            for i in range(0, len(episodes), 3):
                group = episodes[i:i + 3]
                for t in range(max(len(e["reward"]) for e in group)):
                    for slot, episode in enumerate(group):
                        if t < len(episode["reward"]):
                            writer.add_step({k: v[t] for k, v in episode.items()}, slot=slot)
    records = Dataset(url).records()
    assert len(records) > 1 and sum(r.steps for r in records) == 68
    assert all(len(r.samples) <= 6 and r.steps <= 40 for r in records)


def test_chunk_steps_over_the_format_bound_is_refused():
    with pytest.raises(ValueError, match="chunk_steps"):
        WriterConfig(chunk_steps=2**20 + 1)
