"""The `thorgym` command line. Each command imports its heavy dependencies lazily."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from thorgym.agents.registry import DEFAULT_AGENT

if TYPE_CHECKING:
    from thorgym.agents.train_args import TrainArgs

app = typer.Typer(
    help="thorgym: Gymnasium environments and fast simulation for AI2-THOR research.",
    no_args_is_help=True,
    add_completion=False,
)
bench_app = typer.Typer(
    help="Benchmarks of the hot paths (results go to BENCHMARKS.md).", no_args_is_help=True
)
eval_app = typer.Typer(help="Evaluate agents and models.", no_args_is_help=True)
data_app = typer.Typer(help="Generate datasets.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")
app.add_typer(eval_app, name="eval")
plot_app = typer.Typer(help="Plot results of runs.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(plot_app, name="plot")


def _ints(text: str, flag: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise typer.BadParameter(f"{flag} takes comma-separated integers, e.g. 1,16,64") from None


@app.command()
def view(
    scene: Annotated[str, typer.Argument(help="Scene name, e.g. FloorPlan1 or FloorPlan212.")],
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("view.png"),
    width: Annotated[int, typer.Option(help="Frame width in pixels (32–300).")] = 224,
    height: Annotated[int, typer.Option(help="Frame height in pixels (32–300).")] = 224,
    action: Annotated[
        list[str] | None,
        typer.Option(help="Actions to take first (repeatable), e.g. --action RotateRight --action LookDown."),
    ] = None,
) -> None:
    """Write one picture of a scene: RGB frame, depth, segmentation and a labelled top-down map."""
    from thorgym.sim.view import render_view

    try:
        path = render_view(scene, out, width, height, tuple(action or ()))
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    typer.echo(f"wrote {path}")


@bench_app.command("sim")
def bench_sim(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    worlds: Annotated[str, typer.Option(help="Batch sizes (worlds), comma-separated.")] = "1,16,64,256",
    sizes: Annotated[str, typer.Option(help="Square frame sizes, comma-separated.")] = "64,224",
    compile: Annotated[
        bool, typer.Option(help="Also measure the torch.compile-fused ray caster (compiles first).")
    ] = False,
    seconds: Annotated[float, typer.Option(help="Minimum timed seconds per record.")] = 1.0,
) -> None:
    """Steps/s of the single Controller and of the batched simulator (RGB + depth)."""
    from thorgym.benchmarks.sim import format_table, run

    records = run(_ints(worlds, "--worlds"), _ints(sizes, "--sizes"), compile=compile, min_seconds=seconds)
    typer.echo(json.dumps(records) if json_ else format_table(records))


@bench_app.command("thor")
def bench_thor(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    steps: Annotated[int, typer.Option(help="Steps per mode.")] = 200,
    size: Annotated[int, typer.Option(help="Square frame size.")] = 128,
) -> None:
    """The genuine ai2thor client through thorgym-thor against thorgym.sim.Controller directly."""
    from thorgym.sim.fifo_server import bench_fifo

    records = bench_fifo(steps=steps, width=size, height=size)
    if json_:
        typer.echo(json.dumps(records))
    else:
        for r in records:
            typer.echo(f"{r['mode']:16} {r['width']}x{r['height']} {r['steps_per_s']:8.1f} steps/s")


@bench_app.command("backbones")
def bench_backbones(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    quick: Annotated[bool, typer.Option(help="Only batch 32 at 128x128.")] = False,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = "auto",
) -> None:
    """Images/s, parameters and multiply-adds of each backbone beside resnet18."""
    from thorgym.benchmarks import backbones

    kw = {"batches": (32,), "sizes": ((128, 128),)} if quick else {}
    backbones.run(None, device=device, as_json=json_, **kw)


@bench_app.command("compress")
def bench_compress(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    backbone: Annotated[str, typer.Option(help="Backbone to compress.")] = "espnetv2_s0.5",
    task_dir: Annotated[
        Path | None,
        typer.Option(
            help="A `thorgym pretrain --out` folder of the same backbone: its classifier is the model "
            "compressed, mAP on its held-out frames. Empty or missing: a short pretraining runs there first."
        ),
    ] = None,
    keep: Annotated[float, typer.Option(help="Channel-pruning keep ratio in (0, 1].")] = 0.5,
    rank: Annotated[float, typer.Option(help="Low-rank ratio in (0, 1].")] = 0.25,
    batch: Annotated[int, typer.Option(help="Batch size of the timed forwards.")] = 32,
    sizes: Annotated[str, typer.Option(help="Square image sizes, comma-separated.")] = "128,64",
    finetune_steps: Annotated[int, typer.Option(help="Recovery fine-tune steps after pruning.")] = 200,
    compile: Annotated[bool, typer.Option(help="Also time torch.compile'd float variants.")] = False,
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds (best kept).")] = 3,
    device: Annotated[str, typer.Option(help="cpu (int8 is CPU-only), cuda or auto.")] = "cpu",
) -> None:
    """Pruned, low-rank and int8 variants of a backbone: images/s, params, MACs, mAP vs fp32."""
    from thorgym.benchmarks import compress

    try:
        compress.run(
            backbone,
            task_dir=task_dir,
            keep_ratio=keep,
            rank_ratio=rank,
            batch=batch,
            sizes=tuple((s, s) for s in _ints(sizes, "--sizes")),
            finetune_steps=finetune_steps,
            compile=compile,
            rounds=rounds,
            device=device,
            as_json=json_,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def _agent_help(trained: bool, task: str = "objectnav") -> str:
    from thorgym.agents.registry import agent_names, get_agent

    names = [n for n in agent_names(task) if not trained or get_agent(n, task).train is not None]
    return "; ".join(f"{n}: {get_agent(n, task).description}" for n in names) + "."


def _task_help() -> str:
    from thorgym.agents.registry import task_names

    return "Task to train: " + ", ".join(task_names()) + "."


def _train_agent_help() -> str:
    from thorgym.agents.registry import agent_names, get_agent, get_task, task_names

    per_task = []
    for t in task_names():
        default = get_task(t).default_agent
        names = [n for n in agent_names(t) if get_agent(n, t).train is not None]
        per_task.append(f"{t}: " + ", ".join(n + " (default)" if n == default else n for n in names))
    return "Agent to train (thorgym.agents.registry) — " + "; ".join(per_task) + "."


@app.command()
def train(
    task: Annotated[str, typer.Argument(help=_task_help())],
    agent: Annotated[str | None, typer.Option(help=_train_agent_help())] = None,
    backbone: Annotated[
        str | None,
        typer.Option(
            help="Visual backbone from the registry (cnn_small, espnetv2_s0.5, mobilevit_xxs, resnet18, ...)."
        ),
    ] = None,
    backbone_ckpt: Annotated[
        str | None,
        typer.Option(
            help="Backbone checkpoint to start from: a file, or a `thorgym pretrain --out` directory."
        ),
    ] = None,
    freeze_backbone: Annotated[
        bool, typer.Option(help="Keep the backbone's weights fixed (train only the policy on top).")
    ] = False,
    envs: Annotated[int | None, typer.Option(help="Parallel environments (one batched simulator).")] = None,
    steps: Annotated[int | None, typer.Option(help="Total environment steps.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of everything (envs, policy, sampling).")] = 0,
    seeds: Annotated[
        str | None,
        typer.Option(
            help="Train these seeds (comma-separated, e.g. 0,1,2) as parallel processes into OUT/seed_<s>, "
            "each with --threads threads; replaces --seed."
        ),
    ] = None,
    device: Annotated[
        str | None, typer.Option(help="auto, cpu, cuda or cuda:K (simulator and policy).")
    ] = None,
    threads: Annotated[int, typer.Option(help="Torch threads per training process.")] = 1,
    env_version: Annotated[
        str,
        typer.Option(
            help="Environment version: trains on thorgym/ObjectNav-<version> "
            "(v1: SAVN's protocol, the default; v0: starts never see the target)."
        ),
    ] = "v1",
    mode: Annotated[
        str,
        typer.Option(
            help="ppo/savn: cached (per-pose features of a frozen backbone, no rendering: fast) or "
            "online (rendered frames, trainable backbone)."
        ),
    ] = "cached",
    scenes: Annotated[
        str | None, typer.Option(help="Train on these scenes only (comma-separated: FloorPlan1,FloorPlan2).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Run directory: checkpoints, TensorBoard logs, curve (default runs/<task>)."),
    ] = None,
    backend: Annotated[str, typer.Option(help="sim (built-in) or ai2thor.")] = "sim",
    questions: Annotated[
        str | None, typer.Option(help="iqa: train questions CSV (from `thorgym data iqa`).")
    ] = None,
    detector: Annotated[
        str | None,
        typer.Option(help="iqa/himn: learned detector checkpoint (default: ground-truth perception)."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            help="demo (minutes), cpu30 (2 CPU cores, ~30 min), gpu, savn-cpu or savn-gpu "
            "(for --agent savn|nonadaptive); flags you give override it."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from the newest checkpoint in --out.")] = False,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between atomic checkpoints.")] = 20_000,
    size: Annotated[int | None, typer.Option(help="Square frame size in pixels.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Training episode step limit.")] = None,
    grid: Annotated[
        int | None, typer.Option(help="savn/nonadaptive: backbone feature grid G (paper 7).")
    ] = None,
    hidden: Annotated[
        int | None, typer.Option(help="Recurrent state size (ppo: GRU, default 128; savn: LSTM, paper 512).")
    ] = None,
    rollout: Annotated[int | None, typer.Option(help="ppo: steps per environment per update.")] = None,
    epochs: Annotated[int | None, typer.Option(help="ppo: passes over each rollout.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate (Adam) of the policy.")] = None,
    first_order: Annotated[
        bool, typer.Option(help="savn: first-order meta-gradient (the loss network then does not learn).")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    comm: Annotated[
        str, typer.Option(help="furnlift/furnmove: explicit, implicit (partners rendered), both or none.")
    ] = "explicit",
    policy: Annotated[
        str, typer.Option(help="furnlift/furnmove: marginal, central (joint softmax) or sync (mixture).")
    ] = "marginal",
    top_down_map: Annotated[
        bool, typer.Option(help="furnlift/furnmove: also observe the top-down map (stacked onto RGB).")
    ] = False,
    data: Annotated[
        Path | None, typer.Option(help="forces: the dataset folder (from `thorgym data forces --out DIR`).")
    ] = None,
    class_weight_power: Annotated[
        float | None,
        typer.Option(
            help="forces: loss weights = inverse class frequency ** power (1: the paper's; 0: plain)."
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(help="forces: samples per gradient step.")] = None,
) -> None:
    """Train an agent on the batched vector env; checkpoints, TensorBoard, learning curve."""
    # The task and agent come from thorgym.agents.registry: the task turns these flags into its
    # trainers' typed arguments (flags it does not read are ignored), the agent trains.
    from thorgym.agents.registry import get_agent, get_task
    from thorgym.agents.train_args import TrainOptions

    out = Path(f"runs/{task}") if out is None else out
    scene_list = None if scenes is None else tuple(x.strip() for x in scenes.split(",") if x.strip())
    try:
        spec = get_task(task)
        trainer = get_agent(agent or spec.default_agent, task)
        if trainer.train is None:
            raise ValueError(f"agent {trainer.name!r} has nothing to train: it is an evaluation baseline")
        options = TrainOptions(
            task=task, agent=trainer.name, out=out, seed=seed, backbone=backbone, backbone_ckpt=backbone_ckpt,
            freeze_backbone=freeze_backbone, envs=envs, steps=steps, device=device, threads=threads,
            env_version=env_version, mode=mode, scenes=scene_list, backend=backend, questions=questions,
            detector=detector, preset=preset, resume=resume, checkpoint_every=checkpoint_every, size=size,
            max_steps=max_steps, grid=grid, hidden=hidden, rollout=rollout, epochs=epochs, lr=lr,
            first_order=first_order, progress=progress, comm=comm, policy=policy, top_down_map=top_down_map,
            data=None if data is None else str(data), class_weight_power=class_weight_power,
            batch_size=batch_size,
        )  # fmt: skip
        args = spec.train_args(options)
        seed_list = None if seeds is None else _ints(seeds, "--seeds")
    except ValueError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if seed_list is not None and spec.parallel_seeds:
        _train_seeds_in_processes(args, seed_list, out)
        return
    runs = [(seed, out)] if seed_list is None else [(s, out / f"seed_{s}") for s in seed_list]
    for s, o in runs:
        one = args if seed_list is None else dataclasses.replace(args, seed=s, out=o)
        try:
            final = trainer.train(one)
        except (ValueError, OSError) as e:  # OSError: also a full disk while writing a checkpoint
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {final} and {o / 'learning_curve.png'}; tensorboard --logdir {o / 'tb'}")


def _train_seeds_in_processes(args: TrainArgs, seeds: tuple[int, ...], out: Path) -> None:
    """``--seeds`` of a task with ``parallel_seeds``: one process per seed, then a line on each."""
    from thorgym.train import train_seeds

    try:
        results = train_seeds(args, seeds)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    for r in results:
        status = "ok" if r.returncode == 0 else f"failed (exit {r.returncode}, log {r.out / 'train.log'})"
        typer.echo(f"seed {r.seed} {status}: {r.final_line}")
    typer.echo(f"tensorboard --logdir {out}")
    if any(r.returncode != 0 for r in results):
        raise typer.Exit(1)


@app.command()
def pretrain(
    backbone: Annotated[
        str, typer.Option(help="Backbone from the registry (cnn_small, espnetv2_s0.5, ...).")
    ] = "cnn_small",
    out: Annotated[
        Path | None,
        typer.Option(
            help="Output dir: backbone.pt, metrics.json, cached frames. Default runs/pretrain_BACKBONE, "
            "where `train --agent savn|nonadaptive` looks for a pretrained backbone."
        ),
    ] = None,
    size: Annotated[int, typer.Option(help="Square frame size in pixels (>= 64).")] = 64,
    train_frames: Annotated[int, typer.Option(help="Frames rendered from the train scenes.")] = 20_000,
    heldout_frames: Annotated[int, typer.Option(help="Frames rendered from the val + test scenes.")] = 4_000,
    epochs: Annotated[int, typer.Option(help="Epochs (pretraining and the linear probes).")] = 5,
    batch_size: Annotated[int, typer.Option(help="Frames per optimiser step.")] = 128,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    min_pixels: Annotated[int, typer.Option(help="Pixels an object type needs to count as in view.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of poses, initialisation and batch order.")] = 0,
    device: Annotated[str, typer.Option(help="cpu, cuda or auto (simulator and model).")] = "cpu",
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoints/state.pt.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Pretrain a backbone on object-type presence in simulator frames of the train scenes;
    report held-out (val + test scenes) mAP against random-init features and chance."""
    from thorgym.pretrain import PretrainArgs
    from thorgym.pretrain import pretrain as run_pretrain

    args = PretrainArgs(
        backbone=backbone,
        out=out if out is not None else Path("runs") / f"pretrain_{backbone}",
        size=size,
        train_frames=train_frames,
        heldout_frames=heldout_frames,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        min_pixels=min_pixels,
        seed=seed,
        device=device,
        resume=resume,
        progress=progress,
    )
    try:
        m = run_pretrain(args)
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"held-out mAP: pretrained {m['map_pretrained']:.4f}, random-init features + linear head "
        f"{m['map_random_init_probe']:.4f}, pretrained features + linear head "
        f"{m['map_pretrained_probe']:.4f}, chance {m['map_chance']:.4f}"
    )
    done = args.out
    typer.echo(f"wrote {done / 'backbone.pt'} and {done / 'metrics.json'}; use --backbone-ckpt {done}")


@eval_app.command("objectnav")
def eval_objectnav(
    checkpoint: Annotated[
        str | None,
        typer.Option(help="Checkpoint file or run directory (its final/newest checkpoint)."),
    ] = None,
    agent: Annotated[
        str, typer.Option(help=_agent_help(trained=False) + " All but random and oracle need --checkpoint.")
    ] = DEFAULT_AGENT,
    split: Annotated[str, typer.Option(help="val or test (held-out scenes).")] = "test",
    episodes: Annotated[
        int | None,
        typer.Option(
            help="Number of the fixed episodes to run (round-robin over scenes); default all 1,000."
        ),
    ] = None,
    video: Annotated[int, typer.Option(help="Record the first K episodes as mp4.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    out: Annotated[Path, typer.Option(help="Output dir: metrics.json, episodes.jsonl, videos.")] = Path(
        "runs/eval"
    ),
    device: Annotated[str, typer.Option(help="Device of the policy network (cpu, cuda, auto).")] = "cpu",
    deterministic: Annotated[
        bool, typer.Option(help="Argmax actions instead of seeded samples from the policy.")
    ] = False,
    threads: Annotated[int, typer.Option(help="Torch threads of the evaluation.")] = 1,
    env_version: Annotated[
        str | None,
        typer.Option(help="Task version of the episodes (default: the checkpoint's, else v1)."),
    ] = None,
    episode_file: Annotated[
        Path | None, typer.Option(help="Play the episodes of this .json(.gz) file instead of --split's.")
    ] = None,
) -> None:
    """Evaluate on the fixed held-out episodes; writes metrics.json and episodes.jsonl."""
    from thorgym.eval.objectnav import format_table, run_eval
    from thorgym.rundir import set_threads

    if split not in ("val", "test", "train"):
        raise typer.BadParameter("--split must be val or test")
    try:
        set_threads(threads)
        result = run_eval(
            agent,
            checkpoint,
            split,
            episodes,
            video,
            seed,
            out,
            device,
            deterministic=deterministic,
            env_version=env_version,
            episode_file=None if episode_file is None else str(episode_file),
        )
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(format_table({agent: result["metrics"]}))
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'episodes.jsonl'}")


@eval_app.command("okvqa")
def eval_okvqa(
    questions: Annotated[Path, typer.Option(help="OpenEnded_mscoco_*_questions.json")],
    annotations: Annotated[Path, typer.Option(help="mscoco_*_annotations.json")],
    predictions: Annotated[Path, typer.Option(help='Results file: [{"question_id", "answer"}]')],
    out: Annotated[Path | None, typer.Option(help="Write metrics JSON here.")] = None,
    missing: Annotated[
        str,
        typer.Option(help="'error' (default) fails on questions without a prediction; 'zero' scores them 0."),
    ] = "error",
) -> None:
    """Score predictions with the official VQA metric (OK-VQA categories)."""
    from thorgym.eval.okvqa import run_cli

    if missing not in ("error", "zero"):
        raise typer.BadParameter("--missing must be 'error' or 'zero'")
    try:
        run_cli(str(questions), str(annotations), str(predictions), str(out) if out else None, missing)
    except (OSError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None


def _eval_furniture(
    task: str,
    agent: str,
    checkpoint: str | None,
    split: str,
    episodes: int,
    envs: int,
    seed: int,
    video: int,
    out: Path | None,
    greedy: bool,
) -> None:
    from thorgym.agents.registry import get_agent
    from thorgym.agents.tbone.evaluate import FurnitureEvalArgs

    out = Path(f"runs/{task}_eval") if out is None else out
    try:
        spec = get_agent(agent, task)
        m = spec.run_evaluation(FurnitureEvalArgs(
            task=task, agent=agent, checkpoint=checkpoint, split=split, episodes=episodes, envs=envs,
            seed=seed, out=out, video=video, greedy=greedy,
        ))  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    keys = ("failed_pickups", "missed_pickups", "spl", "invalid_mass", "tvd")
    extra = "".join(f"; {k} {m[k]:.2f}" for k in keys if k in m)
    typer.echo(f"{agent} on {m['episodes']} {split} {task} episodes: success {m['success']:.1f}%; "
               f"episode length {m['episode_length']:.1f}{extra}")  # fmt: skip
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'episodes.jsonl'}")


_FURN_CKPT = Annotated[str | None, typer.Option(help="tbone: checkpoint file or run directory.")]
_FURN_AGENT = Annotated[str, typer.Option(help=_agent_help(trained=False, task="furnlift"))]
_FURN_SPLIT = Annotated[str, typer.Option(help="test (FloorPlan226–230) or val (221–225).")]
_FURN_EPISODES = Annotated[int, typer.Option(help="The first N fixed episodes of the split.")]
_FURN_ENVS = Annotated[int, typer.Option(help="Parallel environments.")]
_FURN_SEED = Annotated[int, typer.Option(help="Seed of the agent's sampling.")]
_FURN_VIDEO = Annotated[int, typer.Option(help="Record the first K episodes (both views + map).")]
_FURN_OUT = Annotated[Path | None, typer.Option(help="Output dir (default runs/<task>_eval).")]
_FURN_GREEDY = Annotated[bool, typer.Option(help="tbone: the most likely joint action instead of sampling.")]


@eval_app.command("furnlift")
def eval_furnlift(
    checkpoint: _FURN_CKPT = None, agent: _FURN_AGENT = "tbone", split: _FURN_SPLIT = "test",
    episodes: _FURN_EPISODES = 200, envs: _FURN_ENVS = 8, seed: _FURN_SEED = 0, video: _FURN_VIDEO = 0,
    out: _FURN_OUT = None, greedy: _FURN_GREEDY = False,
) -> None:  # fmt: skip
    """Evaluate FurnLift agents on held-out living rooms: success, failed and missed pickups."""
    _eval_furniture("furnlift", agent, checkpoint, split, episodes, envs, seed, video, out, greedy)


@eval_app.command("furnmove")
def eval_furnmove(
    checkpoint: _FURN_CKPT = None, agent: _FURN_AGENT = "tbone", split: _FURN_SPLIT = "test",
    episodes: _FURN_EPISODES = 200, envs: _FURN_ENVS = 8, seed: _FURN_SEED = 0, video: _FURN_VIDEO = 0,
    out: _FURN_OUT = None, greedy: _FURN_GREEDY = False,
) -> None:  # fmt: skip
    """Evaluate FurnMove agents on held-out living rooms: success, SPL (Manhattan), invalid mass, TVD."""
    _eval_furniture("furnmove", agent, checkpoint, split, episodes, envs, seed, video, out, greedy)


@eval_app.command("iqa")
def eval_iqa(
    checkpoint: Annotated[
        str | None, typer.Option(help="Checkpoint file or run directory (himn, ppo).")
    ] = None,
    agent: Annotated[str, typer.Option(help=_agent_help(trained=False, task="iqa"))] = "himn",
    split: Annotated[str, typer.Option(help="seen or unseen (held-out scenes FloorPlan1–5).")] = "unseen",
    questions: Annotated[str | None, typer.Option(help="Evaluate this question CSV instead.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions (default all).")] = None,
    per_type: Annotated[
        int | None,
        typer.Option(help="Only the first N questions of each type (a multiple of 4 keeps balance)."),
    ] = None,
    envs: Annotated[int, typer.Option(help="Parallel environments.")] = 16,
    size: Annotated[int, typer.Option(help="Square frame size (as trained).")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of the agent's sampling.")] = 0,
    video: Annotated[int, typer.Option(help="Record the first K episodes as mp4 (view + map).")] = 0,
    detector: Annotated[
        str | None,
        typer.Option(help="Learned detector checkpoint (default: the checkpoint's, else ground truth)."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output dir: metrics.json, episodes.jsonl, videos.")] = Path(
        "runs/iqa_eval"
    ),
) -> None:
    """Evaluate an IQA agent on held-out questions; accuracy per question type."""
    from thorgym.agents.himn.evaluate import IQAEvalArgs
    from thorgym.agents.registry import get_agent

    if split not in ("seen", "unseen"):
        raise typer.BadParameter("--split must be seen or unseen")
    try:
        spec = get_agent(agent, "iqa")
        m = spec.run_evaluation(IQAEvalArgs(
            agent=agent, checkpoint=checkpoint, split=split, questions=questions, limit=limit,
            per_type=per_type, envs=envs, size=size, seed=seed, out=out, video=video, detector=detector,
        ))  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    acc = " / ".join(
        f"{t} {m[f'accuracy_{t}']:.1f}" if m.get(f"accuracy_{t}") is not None else f"{t} n/a"
        for t in ("existence", "counting", "contains")
    )
    typer.echo(
        f"{agent} on {m['questions']} {split} questions: accuracy {acc}; "
        f"episode length {m['episode_length']:.0f}; invalid actions {m['invalid_action_rate']:.2f}"
    )
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'episodes.jsonl'}")


@eval_app.command("forces")
def eval_forces(
    checkpoint: Annotated[str | None, typer.Option(help="model: checkpoint file or run directory.")] = None,
    agent: Annotated[str, typer.Option(help=_agent_help(trained=False, task="forces"))] = "model",
    data: Annotated[
        Path | None,
        typer.Option(help="Dataset folder (`thorgym data forces`); default: the shipped test split."),
    ] = None,
    split: Annotated[str, typer.Option(help="train, val or test (scenes 26-30 of each room type).")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the random baseline.")] = 0,
    video: Annotated[int, typer.Option(help="Draw K samples: contact sheet PNG and mp4.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    out: Annotated[Path, typer.Option(help="Output dir: metrics.json, predictions.jsonl, videos.")] = Path(
        "runs/forces_eval"
    ),
) -> None:
    """Score a force predictor or a baseline on held-out scenes: whole-sequence accuracy (all-stop
    sequences left out), per-step accuracy, per object type."""
    from thorgym.agents.forces.evaluate import ForcesEvalArgs
    from thorgym.agents.registry import get_agent

    try:
        spec = get_agent(agent, "forces")
        m = spec.run_evaluation(ForcesEvalArgs(
            agent=agent, checkpoint=checkpoint, data_root=data, split=split, out_dir=out, video=video,
            seed=seed, device=device,
        ))  # fmt: skip
    except (ValueError, FileNotFoundError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"{agent} on {m['samples']} {split} samples ({m['moving_samples']} moving): sequence accuracy "
        f"{m['sequence_accuracy']}%, per-step accuracy {m['per_step_accuracy']}%"
    )
    typer.echo(f"wrote {out / 'metrics.json'} and {out / 'predictions.jsonl'}")


@data_app.command("iqa")
def data_iqa(
    out: Annotated[Path, typer.Option(help="Output folder: train.csv, seen.csv, unseen.csv.")] = Path(
        "runs/iqa_data"
    ),
    per_type: Annotated[
        int | None,
        typer.Option(help="Questions per type and split (default IQUAD V1's: 25,600 / 800 / 640)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the objects and scene configurations.")] = 0,
    splits: Annotated[
        str, typer.Option(help="Comma-separated splits: train, seen, unseen.")
    ] = "train,seen,unseen",
    workers: Annotated[int, typer.Option(help="Processes (the result does not depend on it).")] = 1,
) -> None:
    """IQUAD-style questions (existence, counting, contains) with balanced answers, each with its
    own scene configuration; train and seen-test on FloorPlan6–30, unseen-test on FloorPlan1–5."""
    from thorgym.datasets.iqa import write_splits

    names = [s.strip() for s in splits.split(",") if s.strip()]
    try:
        paths = write_splits(out, per_type=per_type, seed=seed, splits=names, workers=workers)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    except OSError as e:  # a full disk, a read-only folder: thorgym.atomic names the file
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    for name, p in paths.items():
        typer.echo(f"wrote {p} ({name})")


@data_app.command("forces")
def data_forces(
    out: Annotated[
        Path, typer.Option(help="Output folder: <split>/<scene>.npz shards and manifest.json.")
    ] = Path("runs/forces_data"),
    scenes: Annotated[
        str | None, typer.Option(help="Comma-separated scene names (default: all 120, split by scene).")
    ] = None,
    n: Annotated[int, typer.Option(help="Samples (pushes) per scene.")] = 40,
    seed: Annotated[int, typer.Option(help="Seed of views, objects, points and forces.")] = 0,
    size: Annotated[int, typer.Option(help="Square image size in pixels.")] = 64,
    workers: Annotated[int, typer.Option(help="Processes (the result does not depend on it).")] = 1,
) -> None:
    """Pushes on visible objects simulated with MuJoCo: image, mask, force, 3-D trajectory and a
    6-step label of 18 classes per sample; train / val / test by scene; resumable (rerun it)."""
    from thorgym.datasets.forces import generate_forces

    names = [s.strip() for s in scenes.split(",") if s.strip()] if scenes else None
    try:
        manifest = generate_forces(out, scenes=names, n=n, seed=seed, size=size, workers=workers)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    for split, info in manifest["splits"].items():
        typer.echo(
            f"{split}: {info['samples']} samples from {info['scenes']} scenes "
            f"({info['all_stop']} all-stop) in {out / split}"
        )


@data_app.command("kqa")
def data_kqa(
    out: Annotated[Path, typer.Option(help="Output folder of the OK-VQA-format split.")] = Path("runs/kqa"),
    seed: Annotated[int, typer.Option(help="Seed of views, questions and answer votes.")] = 0,
    train_scenes: Annotated[int, typer.Option(help="Train scenes per room type (1–20).")] = 20,
    test_scenes: Annotated[int, typer.Option(help="Test scenes per room type (1–5).")] = 5,
    images_per_scene: Annotated[int, typer.Option(help="Rendered views per scene.")] = 12,
    size: Annotated[int, typer.Option(help="Square image size in pixels.")] = 224,
    baselines: Annotated[
        bool, typer.Option(help="Also score most-frequent, question-only and knowledge-retrieval baselines.")
    ] = True,
) -> None:
    """Embodied knowledge QA: generate an OK-VQA-format split from simulator scenes (train and
    test on disjoint scenes) and score the baselines with the official metric."""
    from thorgym.kqa.generate import generate_kqa

    try:
        summary = generate_kqa(
            out,
            seed=seed,
            train_scenes_per_type=train_scenes,
            test_scenes_per_type=test_scenes,
            images_per_scene=images_per_scene,
            width=size,
            height=size,
            progress=True,
        )
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    except OSError as e:  # a full disk, a read-only folder: thorgym.atomic names the file
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote the split to {out} in {summary.get('seconds', 0):.0f} s")
    if baselines:
        from thorgym.kqa.baselines import format_results_markdown, run_baselines

        results = run_baselines(out, out / "baselines", detector="both")
        typer.echo(format_results_markdown(results))
        typer.echo(f"baseline results in {out / 'baselines'}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("runs/demo"),
    steps: Annotated[int | None, typer.Option(help="Training steps (default: the demo preset's).")] = None,
    episodes: Annotated[int, typer.Option(help="Held-out test episodes per agent.")] = 200,
) -> None:
    """The main job: train a quick ObjectNav agent, evaluate it against random and oracle on the
    held-out test scenes, write metrics, a video and a contact sheet."""
    from thorgym.agents.batched_ppo import feature_settings
    from thorgym.envs.feature_cache import FeatureCache
    from thorgym.eval.objectnav import format_table, run_eval
    from thorgym.sim.scenes import scenes_for
    from thorgym.train import TrainArgs
    from thorgym.train import train as run_train

    explicit = {"steps": steps} if steps is not None else {}
    args = TrainArgs(preset="demo", out=out / "train", explicit=set(explicit), **explicit).with_preset()
    features = feature_settings(args)
    ckpt = features.pop("backbone_ckpt")
    cache = FeatureCache(backbone_ckpt=None if ckpt is None else Path(ckpt), **features)
    typer.echo("building the per-pose feature cache of the demo's train and test scenes (once) ...")
    cache.build(list(args.scenes) + scenes_for("test"))  # one process per core
    typer.echo(f"training {args.agent} ({args.steps} steps) into {args.out} ...")
    final = run_train(args)
    rows = {}
    for agent in (args.agent, "random", "oracle"):
        typer.echo(f"evaluating {agent} on {episodes} held-out test episodes ...")
        res = run_eval(
            agent,
            str(final) if agent == args.agent else None,
            "test",
            episodes,
            video=1,
            seed=0,
            out=out / f"eval_{agent}",
        )
        rows[agent] = res["metrics"]
    typer.echo(format_table(rows))
    typer.echo(f"learning curve: {out / 'train' / 'learning_curve.png'}")
    for agent in rows:
        typer.echo(
            f"{agent}: {out / f'eval_{agent}' / 'metrics.json'}, video and contact sheet in "
            f"{out / f'eval_{agent}'}"
        )


@bench_app.command("train")
def bench_train(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    agent: Annotated[str, typer.Option(help="Agents, comma-separated: ppo, savn, nonadaptive.")] = "ppo",
    modes: Annotated[
        str,
        typer.Option(
            help="ppo: cached (per-pose features), online (rendered frames, frozen backbone), "
            "online-trainable, synthetic (the trainer alone), sb3 (the Stable-Baselines3 path)."
        ),
    ] = "cached,online,sb3",
    envs: Annotated[int | None, typer.Option(help="Environments (ppo: 128; online/sb3: 16).")] = None,
    rollouts: Annotated[int, typer.Option(help="ppo: timed rollouts per mode (after one warm-up).")] = 3,
    threads: Annotated[int, typer.Option(help="Torch threads.")] = 1,
    preset: Annotated[str, typer.Option(help="savn/nonadaptive: training preset.")] = "savn-cpu",
    batches: Annotated[int, typer.Option(help="savn: timed episode batches (after one warm-up).")] = 5,
    device: Annotated[str | None, typer.Option(help="cpu or cuda.")] = None,
    first_order: Annotated[bool, typer.Option(help="SAVN with the first-order meta-gradient.")] = False,
) -> None:
    """Training env steps/s of the agents, every mode measured in the same run."""
    from thorgym.benchmarks.train import format_ppo_table, run, run_ppo_modes, run_sb3
    from thorgym.rundir import set_threads

    agents = tuple(a.strip() for a in agent.split(",") if a.strip())
    bad = [a for a in agents if a not in ("ppo", "savn", "nonadaptive")]
    if bad or not agents:
        raise typer.BadParameter(f"--agent takes ppo, savn and/or nonadaptive, got {agent!r}")
    set_threads(threads)
    records: list[dict] = []
    if "ppo" in agents:
        wanted = [m.strip() for m in modes.split(",") if m.strip()]
        ppo_modes = [m for m in wanted if m != "sb3"]
        for m in ppo_modes:
            n = envs or (128 if m in ("cached", "synthetic") else 16)
            records += run_ppo_modes([m], n, rollouts=rollouts, device=device or "cpu", threads=threads)
        if "sb3" in wanted:
            records.append(run_sb3(envs=envs or 16, threads=threads))
    savn = tuple(a for a in agents if a != "ppo")
    if savn:
        recs = run(savn, preset=preset, batches=batches, envs=envs, device=device, first_order=first_order)
        records += [{**r, "device": str(r["device"]), "mode": "savn", "threads": threads} for r in recs]
    typer.echo(json.dumps(records) if json_ else format_ppo_table(records))


@bench_app.command("iqa")
def bench_iqa(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    size: Annotated[int, typer.Option(help="Square frame size.")] = 64,
    envs: Annotated[str, typer.Option(help="Comma-separated numbers of environments.")] = "1,16",
) -> None:
    """IQA env steps/s against the raw simulator, semantic-map updates/s, HIMN driver steps/s."""
    from thorgym.benchmarks.iqa import format_table, run

    records = run(size=size, envs=_ints(envs, "--envs"))
    typer.echo(json.dumps(records) if json_ else format_table(records))


@bench_app.command("soak")
def bench_soak(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    minutes: Annotated[float, typer.Option(help="Total minutes: half simulator, half thorgym-thor.")] = 10,
    envs: Annotated[int, typer.Option(help="Worlds of the batched simulator.")] = 16,
    size: Annotated[int, typer.Option(help="Square frame size.")] = 64,
) -> None:
    """Long runs of the batched simulator and of thorgym-thor: steps/s drift, memory, fds, children."""
    from thorgym.benchmarks.soak import format_table, run

    records = run(minutes=minutes, envs=envs, size=size)
    typer.echo(json.dumps(records) if json_ else format_table(records))


@bench_app.command("furniture")
def bench_furniture(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    size: Annotated[int, typer.Option(help="Square frame size per agent.")] = 64,
    envs: Annotated[str, typer.Option(help="Comma-separated numbers of environments.")] = "1,8",
) -> None:
    """FurnLift/FurnMove joint steps/s against the raw simulator, and tbone forwards/s."""
    from thorgym.benchmarks.furniture import format_table, run

    records = run(size=size, envs=_ints(envs, "--envs"))
    typer.echo(json.dumps(records) if json_ else format_table(records))


@bench_app.command("forces")
def bench_forces(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    size: Annotated[int, typer.Option(help="Square frame size.")] = 64,
    seconds: Annotated[float, typer.Option(help="Seconds per measurement.")] = 2.0,
) -> None:
    """MuJoCo pushes/s and real-time factor against one render of the same world, model build
    time, and forces dataset samples/s, per room type."""
    from thorgym.benchmarks.forces import format_table, run

    records = run(size=size, min_seconds=seconds)
    typer.echo(json.dumps(records) if json_ else format_table(records))


@bench_app.command("env")
def bench_env(
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON list of records.")] = False,
    size: Annotated[int, typer.Option(help="Square frame size.")] = 64,
) -> None:
    """Env steps/s against raw simulator steps/s in the same run, and make_vec throughput."""
    from thorgym.envs.bench import format_table, run

    records = run(size=size)
    typer.echo(json.dumps(records) if json_ else format_table(records))


@plot_app.command("curves")
def plot_curves_cmd(
    out: Annotated[Path, typer.Argument(help="PNG file to write.")],
    group: Annotated[
        list[str],
        typer.Option(
            help="LABEL=RUN[,RUN...] (paths or glob patterns of training run dirs); repeat per group, "
            "e.g. --group 'pretrained=runs/pre_seed*' --group 'random init=runs/rnd_seed*'."
        ),
    ],
    tag: Annotated[list[str] | None, typer.Option(help="TensorBoard scalar(s) to plot (repeatable).")] = None,
    window: Annotated[int, typer.Option(help="Moving-average window (logged points).")] = 5,
    title: Annotated[str, typer.Option(help="Figure title.")] = "",
) -> None:
    """Learning curves over seeds: per group the mean and the min..max band of each tag."""
    from thorgym.eval.curves import expand_runs, plot_curves

    groups = {}
    for g in group:
        label, sep, runs = g.partition("=")
        if not sep or not label or not runs:
            raise typer.BadParameter(f"--group {g!r}: expected LABEL=RUN[,RUN...]")
        groups[label] = expand_runs(runs.split(","))
    tags = tuple(tag) if tag else ("objectnav/success", "objectnav/spl")
    curves = plot_curves(groups, out, tags=tags, window=window, title=title)
    for t, by_group in curves.items():
        for label, c in by_group.items():
            marks = [0.25, 0.5, 0.75, 1.0]
            at = [int(round(q * (len(c["steps"]) - 1))) for q in marks]
            vals = ", ".join(f"{int(c['steps'][i])}: {c['mean'][i]:.4f}" for i in at)
            typer.echo(f"{t} {label} mean at steps {vals}")
    typer.echo(f"wrote {out}")


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
