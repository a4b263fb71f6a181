"""Training-step time of the agent (world model + imagination + actor-critic + probe) on this machine.

    dreamstream bench train --preset debug
    dreamstream bench train --preset atari_pong --device cuda --compile

Batches are synthetic (random but contract-conforming) Atari-like 64x64x3 frames and MiniGrid 7x7x3 grids;
the step time does not depend on their content. The reference is PyDreamer's own figure for its Atari model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from dreamstream.datasets.loader.batch import torch_dtype
from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.train.loop.learner import Learner
from dreamstream.train.model.agent import Agent
from dreamstream.train.model.config import ModelConfig, OptimConfig
from dreamstream.train.runtime import default_device, size_torch_threads

SPECS = {
    "image": EpisodeSpec(observations={"image": FieldSpec((64, 64, 3), "uint8", "image")},
                         action=ActionSpec(kind="discrete", n=18)),
    "grid": EpisodeSpec(observations={"grid": FieldSpec((7, 7, 3), "uint8", "categorical", (11, 6, 3)),
                                      "direction": FieldSpec((1,), "uint8", "categorical", (4,)),
                                      "map": FieldSpec((8, 8, 3), "uint8", "categorical", (11, 6, 3))},
                        action=ActionSpec(kind="discrete", n=7)),
}


def synthetic_batch(spec: EpisodeSpec, length: int, batch: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """A [T, B] batch that obeys the batch contract (for benchmarks; the values are random)."""
    g = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for name, field in spec.observations.items():
        shape = (length, batch, *field.shape)
        if field.kind == "categorical":
            assert field.classes is not None
            out[name] = torch.stack([torch.randint(0, c, shape[:-1], generator=g) for c in field.classes], -1)
            out[name] = out[name].to(torch_dtype(field.dtype))
        elif field.kind == "image":
            out[name] = torch.randint(0, 256, shape, generator=g).to(torch.uint8)
        else:
            out[name] = torch.randn(shape, generator=g)
    is_first = torch.zeros(length, batch, dtype=torch.bool)
    is_first[0] = True
    if spec.action.kind == "discrete":
        action = torch.randint(0, int(spec.action.n or 1), (length, batch), generator=g)
    else:
        action = torch.rand(length, batch, *spec.action.shape, generator=g) * 2 - 1
    terminal = torch.zeros(length, batch, dtype=torch.bool)
    out.update(action=action, reward=torch.randn(length, batch, generator=g), is_first=is_first,
               is_last=terminal, is_terminal=terminal, reset=is_first.clone())
    return out


def measure(spec_name: str, model: ModelConfig, optim: OptimConfig, batch: int, length: int, steps: int,
            warmup: int, device: torch.device, spec: EpisodeSpec | None = None) -> dict[str, Any]:
    """Median seconds per `train_step` after `warmup` steps, with the sizes that produced it."""
    spec = spec or SPECS[spec_name]
    learner = Learner(Agent(spec, model), optim, device)
    data = synthetic_batch(spec, length, batch)
    state = learner.initial_state(batch)
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        metrics, state = learner.train_step(data, state)
        metrics["loss/model"].item()  # wait for the device before stopping the clock
        if i >= warmup:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    return {
        "spec": spec_name, "device": str(device), "precision": learner.precision, "compile": optim.compile,
        "batch": batch, "length": length, "imag_horizon": model.imag_horizon,
        "params": sum(p.numel() for p in learner.agent.parameters()),
        "step_s": round(median, 4), "step_s_min": round(min(times), 4),
        "frames_per_s": round(batch * length / median, 1), "threads": torch.get_num_threads(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", action="append", default=None, metavar="NAME",
                        help="model, optimiser and batch sizes from these presets in order (default: debug); "
                             "e.g. atari_pong, minigrid_empty, or minigrid_empty --preset debug")
    parser.add_argument("--spec", choices=[*SPECS, "all", "auto"], default="auto",
                        help="synthetic data: auto = image for Atari presets, grid for MiniGrid, all otherwise")
    parser.add_argument("--batch", type=int, default=None, help="sequences per batch B (default: loader.batch_size)")
    parser.add_argument("--length", type=int, default=None, help="steps per sequence T (default: loader.seq_len)")
    parser.add_argument("--horizon", type=int, default=None, help="imagination horizon (default: the preset's)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation, allocator)")
    parser.add_argument("--precision", default=None, help="auto, fp32, bf16, fp16 (default: the preset's)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the step's two graphs")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if present)")
    parser.add_argument("--online", action="store_true",
                        help="also time the online trainer loop of the preset (collectors, loader, snapshots, "
                             "logging, evaluation) over --steps gradient steps, against the bare step of the same "
                             "model, batch and torch threads in this run")


def spec_names(choice: str, env_id: str) -> list[str]:
    if choice == "all":
        return list(SPECS)
    if choice != "auto":
        return [choice]
    if env_id.startswith("ALE/"):
        return ["image"]
    return ["grid"] if env_id.startswith(("MiniGrid", "BabyAI")) else list(SPECS)


def run(args: argparse.Namespace) -> dict[str, Any]:
    from dreamstream.settings import load_settings
    from dreamstream.train.loop.settings import TrainSettings

    presets = args.preset or ["debug"]
    settings, _ = load_settings(TrainSettings, presets[0], presets[1:])
    model, optim, loader = settings.model, settings.optim, settings.loader
    if args.horizon is not None:
        model.imag_horizon = args.horizon
    if args.precision is not None:
        optim.precision = args.precision
    optim.compile = optim.compile or args.compile
    batch, length = args.batch or loader.batch_size, args.length or loader.seq_len
    device = torch.device(args.device) if args.device else default_device()
    if args.online:
        return online_ratio(presets, args, device)
    size_torch_threads(configured=settings.train.torch_threads)  # as the trainer does offline
    results = [measure(name, model, optim, batch, length, args.steps, args.warmup, device)
               for name in spec_names(args.spec, settings.env.id)]
    for r in results:
        print(f"bench train {'+'.join(presets)} [{r['spec']}]: {1 / r['step_s']:.2f} gradient steps/s "
              f"({r['step_s']:.3f} s/step, B={r['batch']} T={r['length']}, {r['params'] / 1e6:.1f}M params, "
              f"{r['device']} {r['precision']}{' compiled' if r['compile'] else ''}); PyDreamer's Atari model: "
              "1.4 steps/s on a T4, about 3 on a V100 at B=32 T=48", flush=True)
    return {"bench": "train", "preset": "+".join(presets), "steps_per_s": round(1 / results[0]["step_s"], 3),
            "results": results}


def online_ratio(presets: list[str], args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Gradient steps/s of the online loop (`dreamstream train` after its prefill) over the bare step.

    The loop's rate is the trainer's own `perf/grad_steps_per_s` over its last log interval (the first
    holds the warm-up), read back from a private MLflow store; the bare step then runs the same model on
    the run's own spec at the thread count the trainer chose, so the ratio is the pipeline's overhead alone.
    """
    import tempfile

    from mlflow.tracking import MlflowClient

    from dreamstream.settings import load_settings
    from dreamstream.train.loop.settings import TrainSettings
    from dreamstream.train.loop.trainer import Trainer

    with tempfile.TemporaryDirectory(prefix="bench-online-") as tmp:
        overrides = [f"train.steps={2 * args.steps}", f"train.log_interval={args.steps}", "train.gif_interval=0",
                     f"train.mlflow_tracking_uri={tmp}/mlflow.db", f"train.device={device}"]
        settings, preset = load_settings(TrainSettings, presets[0], presets[1:], overrides)
        trainer = Trainer(settings, f"{tmp}/run", preset=preset, progress=False)
        trainer.run()
        assert trainer.result is not None
        history = MlflowClient(trainer.result.tracking_uri).get_metric_history(trainer.result.mlflow_run_id,
                                                                                "perf/grad_steps_per_s")
        online = max(history, key=lambda m: m.step).value
        threads = torch.get_num_threads()  # what the trainer chose beside its collectors and evaluation
        spec = trainer.agent.spec
    bare = measure("run", settings.model, settings.optim, settings.loader.batch_size, settings.loader.seq_len,
                   args.steps, args.warmup, device, spec=spec)
    ratio = online * bare["step_s"]
    print(f"bench train --online {'+'.join(presets)}: online loop {online:.2f} gradient steps/s, bare step "
          f"{1 / bare['step_s']:.2f} at {threads} torch threads (B={bare['batch']} T={bare['length']}): "
          f"ratio {ratio:.2f}", flush=True)
    return {"bench": "train-online", "preset": "+".join(presets), "online_steps_per_s": round(online, 3),
            "bare_steps_per_s": round(1 / bare["step_s"], 3), "threads": threads, "bare": bare,
            "ratio": round(ratio, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    print(json.dumps(run(parser.parse_args())))
