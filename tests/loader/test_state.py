"""Resumable position: a loader restored from state_dict() continues its epoch where it stopped."""

from __future__ import annotations

import io
import json
import logging
from collections import Counter

import pytest
import torch
from loader_helpers import positions

from dreamstream.datasets.loader import LoaderConfig, make_loader


def assert_same(resumed: dict, original: dict, first: bool) -> None:
    for name, tensor in original.items():
        if name == "reset" and first:  # a resumed run has no model state: every row starts from zero
            assert bool(resumed["reset"][0].all())
            assert torch.equal(resumed["reset"][1:], tensor[1:])
        else:
            assert torch.equal(resumed[name], tensor), name


@pytest.mark.parametrize(("mode", "workers"), [("tbtt", 0), ("windows", 0), ("tbtt", 2)])
def test_resume_continues_the_epoch_where_it_stopped(corpus, mode, workers):
    config = LoaderConfig(batch_size=4, seq_len=10, mode=mode, workers=workers, reset_interval=40,
                          shuffle_buffer=60, seed=4)
    with make_loader(corpus.url, config) as loader:
        reference = list(loader) + [batch for _, batch in zip(range(3), loader, strict=False)]
        epoch_length = len(reference) - 3

    stop = 7
    with make_loader(corpus.url, config) as loader:
        consumed = [batch for _, batch in zip(range(stop), loader, strict=False)]
        state = loader.state_dict()
    assert state["epoch"] == 0 and state["position"] == stop
    # Plain data: it survives JSON and a weights_only torch checkpoint.
    state = json.loads(json.dumps(state))
    buffer = io.BytesIO()
    torch.save({"loader": state}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)["loader"]

    with make_loader(corpus.url, config) as loader:
        loader.load_state_dict(state)
        rest = list(loader)
        assert len(rest) == epoch_length - stop  # the epoch is not started over
        rest += [batch for _, batch in zip(range(3), loader, strict=False)]  # and the next epoch follows
        assert loader.metrics()["batches"] == len(reference)
    for i, (resumed, original) in enumerate(zip(rest, reference[stop:], strict=True)):
        assert_same(resumed, original, first=i == 0)
    if mode == "tbtt":
        steps = Counter(p for batch in consumed + rest[: epoch_length - stop] for p in positions(batch))
        assert steps == corpus.all_steps()


def test_a_changed_layout_restarts_the_saved_epoch_with_a_warning(corpus, caplog):
    config = LoaderConfig(batch_size=4, seq_len=10, shuffle_buffer=60)
    with make_loader(corpus.url, config) as loader:
        for _, _ in zip(range(3), loader, strict=False):
            pass
        state = loader.state_dict()
    with make_loader(corpus.url, LoaderConfig(batch_size=2, seq_len=10, shuffle_buffer=60)) as loader:
        with caplog.at_level(logging.WARNING):
            loader.load_state_dict(state)
        assert "rows: [4] -> [2]" in caplog.text
        assert loader.state_dict()["position"] == 0
        assert Counter(p for batch in loader for p in positions(batch)) == corpus.all_steps()


def test_a_foreign_state_is_refused(corpus):
    with make_loader(corpus.url, LoaderConfig()) as loader, pytest.raises(ValueError, match="not a dreamstream"):
        loader.load_state_dict({"epoch": 3})
