"""Look inside a trained world model: posterior states, open-loop dreams, decoded predictions, interventions.

    from dreamstream.datasets import Dataset
    from dreamstream.train.dream.api import load_episode, load_model, prediction_errors

    model = load_model("runs/minigrid")             # a run folder, a checkpoints folder, or a .pt file (any URL)
    data = Dataset("data/minigrid")
    model.check_spec(data.spec, data.url)           # UserError when the model was trained on another spec
    episode = load_episode(data, episode_id)        # all rows of one episode: field -> [T, ...] NumPy arrays
    post = model.encode(episode)                    # posterior state of every row: Latents of length T
    dream = model.imagine(post, start=10, actions=episode["action"][11:26])   # rows 11..25, recorded actions
    mine = model.imagine(post, start=10, horizon=15)                           # ... or under the policy
    recon, pred = model.decode(post), model.decode(dream)   # field -> [T, ...] (+ reward, cont, map probe)
    errors = prediction_errors(model.spec, episode, pred, dream.steps)       # per-step errors per field
    edited = model.intervene(post, variable=3, value=7)     # z_3 := class 7 on every row (or `steps=`)
    model.decode(edited)                                    # what the decoders make of the edited states

A checkpoint (the trainer's `<run>/checkpoints/`) holds the whole agent and can do all of this. A policy
snapshot (`<run>/snapshots/`) holds only the encoder, RSSM and actor: it encodes and imagines, but decoding
(reconstructions, predictions, rewards) needs a checkpoint. Every file loads with torch.load(weights_only=True).

Conventions (the dataset's): row t holds observation t and the action that led to it. `imagine(post, start)`
starts from the posterior of row `start` (rows 0..start observed) and predicts rows start+1, start+2, ...;
action i of `actions` is the one that leads to row start+1+i.
"""

from dreamstream.train.dream.episodes import episode_ids, load_episode, prediction_errors
from dreamstream.train.dream.latents import Latents
from dreamstream.train.dream.load import load_model
from dreamstream.train.dream.model import CHECKPOINT, SNAPSHOT, DreamModel

__all__ = ["CHECKPOINT", "SNAPSHOT", "DreamModel", "Latents", "episode_ids", "load_episode", "load_model",
           "prediction_errors"]
