"""Episode videos: the mp4 decodes with one frame per observation; files appear atomically."""

from __future__ import annotations

import imageio.v2 as imageio
import numpy as np
from objectnav_helpers import SMALL

from thorgym.envs.objectnav import ObjectNavEnv
from thorgym.envs.video import RecordEpisodeVideo, compose_frame, draw_topdown
from thorgym.tasks import objectnav as on


def test_recorder_writes_decodable_mp4s(tmp_path):
    env = RecordEpisodeVideo(ObjectNavEnv(**SMALL, max_steps=6), tmp_path, name_prefix="nav")
    env.reset(seed=0)
    for _ in range(6):  # ends by the step limit: 1 + 6 frames
        *_, term, trunc, _ = env.step(on.ROTATE_RIGHT)
    assert trunc
    env.reset()
    for a in (on.MOVE_AHEAD, on.DONE):  # ends by Done: 1 + 2 frames
        *_, term, trunc, _ = env.step(a)
    assert term
    env.reset()  # a third episode, never stepped: one frame, written on close
    env.close()
    assert [p.name for p in env.videos] == [
        "nav-episode-000000.mp4",
        "nav-episode-000001.mp4",
        "nav-episode-000002.mp4",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in env.videos]
    for path, n in zip(env.videos, (7, 3, 1), strict=True):
        reader = imageio.get_reader(path, format="ffmpeg")
        frames = [f for f in reader]
        reader.close()
        assert len(frames) == n
        assert frames[0].shape[0] % 16 == 0 and frames[0].shape[1] % 16 == 0
        assert frames[0].std() > 5  # not blank


def test_episode_trigger_and_map():
    env = ObjectNavEnv(**SMALL)
    env.reset(seed=1)
    top = draw_topdown(env.layout(), env.path, env.episode.target, size=128)
    assert top.shape == (128, 128, 3) and top.dtype == np.uint8
    assert (np.abs(top.astype(int) - [235, 0, 205]).sum(-1) < 30).any()  # target ring
    frame = compose_frame(np.zeros((64, 64, 3), np.uint8), top, ["a", "b"], height=128)
    assert frame.shape[0] % 16 == 0 and frame.shape[1] % 16 == 0
    env.close()


def test_trigger_skips_episodes(tmp_path):
    env = RecordEpisodeVideo(ObjectNavEnv(**SMALL), tmp_path, episode_trigger=lambda i: i % 2 == 1)
    for _ in range(2):
        env.reset(seed=3)
        env.step(on.DONE)
    env.close()
    assert [p.name for p in env.videos] == ["objectnav-episode-000001.mp4"]
