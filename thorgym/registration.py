"""The table of thorgym's Gymnasium environments, registered on ``import thorgym``.

Entry points are strings, so registering imports neither torch nor ai2thor; each environment's
module is imported when it is made. ``vector_entry_point`` gives the natively batched vector
environment ``gymnasium.make_vec(id, num_envs=N)`` returns on the built-in simulator.

A task whose class builds itself from keyword arguments (``env_setup``, see
``thorgym.tasks.base.EnvTask``) needs no env module: :func:`task_line` points its line at the
generic factories ``thorgym.envs.task_env:make_env`` / ``make_vector_env`` with the class path in
the kwargs, e.g. ``task_line("thorgym/ObjectNav-v1", "thorgym.tasks.objectnav:ObjectNavTask",
version="v1")``.
"""

from __future__ import annotations

from typing import Any


def task_line(env_id: str, task: str, **kwargs: Any) -> dict[str, Any]:
    """The table line of a task given by class path (``"thorgym.tasks.<module>:<Class>"``): the
    generic factories build it; ``kwargs`` are its ``env_setup``'s defaults for this id."""
    return {
        "id": env_id,
        "entry_point": "thorgym.envs.task_env:make_env",
        "vector_entry_point": "thorgym.envs.task_env:make_vector_env",
        "kwargs": {"task": task, "backend": "sim", **kwargs},
    }


ENVS: tuple[dict[str, Any], ...] = (
    # SAVN's protocol (start anywhere reachable) under AI2-THOR's visibility rule: the default;
    # make_vec(..., cached=True): pose tables of the static scenes, cached backbone features
    task_line("thorgym/ObjectNav-v1", "thorgym.tasks.objectnav:ObjectNavTask", version="v1"),
    # thorgym's first protocol: starts never see the target
    task_line("thorgym/ObjectNav-v0", "thorgym.tasks.objectnav:ObjectNavTask", version="v0"),
    # interactive question answering (IQUAD V1), registered by task class
    task_line("thorgym/IQA-v0", "thorgym.tasks.iqa:IQATask"),
    # two agents, one television (Two Body Problem / A Cordial Sync), registered by task class;
    # PettingZoo: thorgym.envs.task_env.make_parallel_env(task) (or envs.furniture's named ones)
    task_line("thorgym/FurnLift-v0", "thorgym.tasks.furniture:FurnLiftTask"),
    task_line("thorgym/FurnMove-v0", "thorgym.tasks.furniture:FurnMoveTask"),
    # what a push does to an object ("What happens if…"): one sample per episode, MuJoCo truth
    {
        "id": "thorgym/ForcePrediction-v0",
        "entry_point": "thorgym.envs.forces:ForcePredictionEnv",
    },
    # push an object to a goal spot on its surface (the interactive variant)
    {
        "id": "thorgym/ForcePush-v0",
        "entry_point": "thorgym.envs.forces:ForcePushEnv",
    },
)


def register_envs() -> list[str]:
    """Register every environment of :data:`ENVS` with Gymnasium (idempotent); returns the ids."""
    import gymnasium

    for spec in ENVS:
        if spec["id"] not in gymnasium.registry:
            gymnasium.register(**spec)
    return [spec["id"] for spec in ENVS]


def env_ids() -> list[str]:
    """Ids of thorgym's registered environments."""
    return [spec["id"] for spec in ENVS]
