"""Scene names, splits and the generated content of all 120 scenes."""

import numpy as np
import pytest

from thorgym.sim import all_scenes, parse_scene, room_type, scenes_for, split_of
from thorgym.sim.batch import get_scene
from thorgym.sim.layout import generate_scene
from thorgym.sim.objects import OBJECT_TYPES

SAVN_TARGETS = {
    "kitchen": ["Toaster", "Microwave", "Fridge", "CoffeeMaker", "GarbageCan", "Box", "Bowl"],
    "living_room": ["Pillow", "Laptop", "Television", "GarbageCan", "Box", "Bowl"],
    "bedroom": ["HousePlant", "Lamp", "Book", "AlarmClock"],
    "bathroom": ["Sink", "ToiletPaper", "SoapBottle", "LightSwitch"],
}
IQA_OBJECTS = [
    "Spoon",
    "Potato",
    "Fork",
    "Plate",
    "Egg",
    "Tomato",
    "Bowl",
    "Lettuce",
    "Apple",
    "Knife",
    "Container",
    "Bread",
    "Mug",
]
IQA_RECEPTACLES = [
    "Sink",
    "StoveBurner",
    "TableTop",
    "GarbageCan",
    "Microwave",
    "Fridge",
    "Cabinet",
]


def test_names_and_splits():
    names = all_scenes()
    assert len(names) == 120 and len(set(names)) == 120
    assert parse_scene("FloorPlan7_physics") == ("FloorPlan7", "kitchen", 7)
    assert room_type("FloorPlan215") == "living_room"
    assert room_type("FloorPlan330") == "bedroom"
    assert room_type("FloorPlan401") == "bathroom"
    assert split_of("FloorPlan20") == "train"
    assert split_of("FloorPlan421") == "val"
    assert split_of("FloorPlan226") == "test"
    assert scenes_for("test", ["kitchen"]) == [f"FloorPlan{i}" for i in range(26, 31)]
    assert len(scenes_for("train")) == 80 and len(scenes_for("val")) == 20


@pytest.mark.parametrize(
    "bad",
    [
        "FloorPlan0",
        "FloorPlan31",
        "FloorPlan231",
        "FloorPlan500",
        "Kitchen1",
        "FloorPlan1_foo",
        "",
        7,
    ],
)
def test_bad_scene_names_list_valid_ones(bad):
    with pytest.raises(ValueError, match="valid scenes are FloorPlan1"):
        parse_scene(bad)


def test_all_scenes_generate_with_task_objects():
    shapes = set()
    for name in all_scenes():
        spec = get_scene(name)
        types = {o.object_type for o in spec.objects}
        missing = [t for t in SAVN_TARGETS[spec.room_type] if t not in types]
        assert not missing, f"{name} lacks SAVN targets {missing}"
        if spec.room_type == "kitchen":
            assert not [t for t in IQA_OBJECTS + IQA_RECEPTACLES if t not in types], name
        if spec.room_type == "living_room":
            assert "Television" in types
        assert len(spec.reachable) >= 12
        shapes.add(spec.shape)
        ids = [o.object_id for o in spec.objects]
        assert len(ids) == len(set(ids))
        for o in spec.objects:
            head, *xyz = o.object_id.split("|")
            assert head == o.object_type and len(xyz) == 3
            assert all(v[0] in "+-" and len(v) == 6 for v in xyz)
    assert {"rect", "L", "partition", "L+partition"} <= shapes


def test_openable_receptacles_and_properties():
    for t in ("Fridge", "Microwave", "Cabinet"):
        assert OBJECT_TYPES[t].openable and OBJECT_TYPES[t].receptacle
    for t in IQA_OBJECTS:
        assert OBJECT_TYPES[t].pickupable
    assert not OBJECT_TYPES["Fridge"].pickupable


def test_small_objects_rest_on_or_in_receptacles():
    spec = get_scene("FloorPlan3")
    by_id = {o.object_id: o for o in spec.objects}
    for o in spec.objects:
        if OBJECT_TYPES[o.object_type].pickupable:
            assert o.parent in by_id, o.object_id
            p = by_id[o.parent]
            inside_xz = np.all(o.lo[[0, 2]] >= p.lo[[0, 2]] - 1e-6) and np.all(
                o.hi[[0, 2]] <= p.hi[[0, 2]] + 1e-6
            )
            assert inside_xz, (o.object_id, o.parent)
            if o.inside:  # its bottom is within the receptacle (it may rise above a sink's rim)
                assert p.lo[1] - 1e-6 <= o.lo[1] < p.hi[1]
            else:
                assert abs(o.lo[1] - p.hi[1]) < 1e-6


def test_generation_is_deterministic():
    a, b = generate_scene("FloorPlan214"), generate_scene("FloorPlan214_physics")
    assert [o.object_id for o in a.objects] == [o.object_id for o in b.objects]
    assert a.start == b.start and a.reachable == b.reachable
    assert [o.object_id for o in generate_scene("FloorPlan215").objects] != [
        o.object_id for o in a.objects
    ]
