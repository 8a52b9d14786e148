"""Fixed ObjectNav evaluation episodes: the shipped sets are what generate_episodes() makes."""

from __future__ import annotations

from collections import Counter

import pytest

from thorgym.datasets.objectnav import generate_episodes, load_episodes, save_episodes
from thorgym.sim.scenes import room_type, split_of
from thorgym.tasks import objectnav as on


@pytest.mark.parametrize("split", ["val", "test"])
def test_shipped_sets_follow_the_protocol(split):
    eps = load_episodes(split)
    assert len(eps) == 1000
    assert len({e["id"] for e in eps}) == 1000
    rooms = Counter(room_type(e["scene"]) for e in eps)
    assert set(rooms.values()) == {250}
    assert set(Counter(e["scene"] for e in eps).values()) == {50}
    for e in eps:
        assert split_of(e["scene"]) == split
        assert e["target"] in on.TARGETS[room_type(e["scene"])]
        assert e["horizon"] == 0.0 and e["rotation"] % 45 == 0
        assert e["l_opt"] >= 2


def test_regenerating_a_subset_matches_the_shipped_set():
    new = generate_episodes("val", per_room_type=3, room_types=["bathroom"], version="v0")
    shipped = {e["id"]: e for e in load_episodes("val", room_types=["bathroom"])}
    assert [e["id"] for e in new] == [f"val-bathroom-{k:04d}" for k in range(3)]
    for e in new:
        assert e == shipped[e["id"]]


def test_episodes_are_independent_of_the_set_size(tmp_path):
    a = generate_episodes("val", per_room_type=2, room_types=["bathroom"], seed=5)
    b = generate_episodes("val", per_room_type=1, room_types=["bathroom"], seed=5)
    assert a[:1] == b
    path = save_episodes(a, tmp_path / "eps.json.gz")
    assert load_episodes(path) == a
    assert generate_episodes("val", 1, room_types=["bathroom"], seed=6) != b


@pytest.mark.slow
@pytest.mark.parametrize("split", ["val", "test"])
def test_regenerating_everything_matches_the_shipped_set(split):
    assert generate_episodes(split) == load_episodes(split)
