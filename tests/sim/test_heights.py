"""Plausible heights in all 120 scenes: fixtures and furniture at real-world heights, and every
small object resting on (or in) its receptacle."""

import numpy as np
import pytest

from thorgym.sim import all_scenes
from thorgym.sim.batch import get_scene
from thorgym.sim.layout import RECESSED_IN, WALL_MOUNTED
from thorgym.sim.objects import OBJECT_TYPES

# Top height (metres above the floor) of every furniture type, [min, max], from common
# furniture and kitchen/bathroom fitting dimensions (counters 85–95 cm; sink rims at counter
# height or a few cm above; dining tables and desks 70–80 cm; beds 45–65 cm; side tables
# 50–70 cm; coffee tables 35–50 cm; TV stands 40–65 cm; sofa and armchair backs 75–95 cm;
# dressers 75–110 cm; toilet tanks 70–85 cm; bathtub rims 50–65 cm; bins 30–80 cm; fridges
# 1.6–2.0 m; base cabinets 75–90 cm; shelving units 0.9–2.0 m). Parented fixtures stand on
# their surface, so their top is the surface height plus their own height.
TOP_HEIGHT: dict[str, tuple[float, float]] = {
    "CounterTop": (0.85, 0.95),
    "Sink": (0.80, 0.95),
    "Cabinet": (0.75, 0.90),
    "Fridge": (1.6, 2.0),
    "TableTop": (0.70, 0.80),
    "Desk": (0.70, 0.80),
    "Bed": (0.45, 0.65),
    "SideTable": (0.50, 0.70),
    "CoffeeTable": (0.35, 0.50),
    "TVStand": (0.40, 0.65),
    "Sofa": (0.75, 0.95),
    "ArmChair": (0.75, 0.95),
    "Dresser": (0.75, 1.10),
    "Toilet": (0.70, 0.85),
    "Bathtub": (0.50, 0.65),
    "GarbageCan": (0.30, 0.80),
    "ShelvingUnit": (0.90, 2.00),
    "FloorLamp": (1.40, 1.90),
    "StoveBurner": (0.85, 1.00),  # on the counter
    "Microwave": (1.10, 1.35),  # on the counter
    "Toaster": (1.00, 1.20),  # on the counter
    "CoffeeMaker": (1.10, 1.35),  # on the counter
    "Television": (0.90, 1.40),  # on its stand
    "HousePlant": (0.95, 1.50),  # on a side table or dresser
    "Lamp": (0.95, 1.30),  # on a side table
}
# Wall-mounted things: the height of their centre.
MOUNT_HEIGHT = {"LightSwitch": (1.1, 1.4), "Mirror": (1.3, 1.8)}

SCENES = list(all_scenes())


def test_the_table_covers_every_furniture_type():
    types = {o.object_type for s in SCENES for o in get_scene(s).objects}
    furniture = {t for t in types if not OBJECT_TYPES[t].pickupable}
    assert furniture - set(WALL_MOUNTED) == set(TOP_HEIGHT)
    assert len(SCENES) == 120


@pytest.mark.parametrize("scene", SCENES)
def test_furniture_heights_are_plausible(scene):
    spec = get_scene(scene)
    by_id = {o.object_id: o for o in spec.objects}
    for o in spec.objects:
        if OBJECT_TYPES[o.object_type].pickupable:
            continue
        if o.object_type in WALL_MOUNTED:
            lo, hi = MOUNT_HEIGHT[o.object_type]
            assert lo <= o.center[1] <= hi, o.object_id
            continue
        lo, hi = TOP_HEIGHT[o.object_type]
        assert lo - 1e-6 <= o.hi[1] <= hi + 1e-6, (o.object_id, float(o.hi[1]))
        if o.parent is not None:
            p = by_id[o.parent]
            if RECESSED_IN.get(o.object_type) == p.object_type:  # set into the counter
                assert abs(o.lo[1] - p.lo[1]) < 1e-6 and o.hi[1] > p.hi[1], o.object_id
            else:
                assert abs(o.lo[1] - p.hi[1]) < 1e-6, o.object_id
    # Counters stand on cabinets: their underside meets the cabinets' tops, in every room.
    cabinet_tops = {round(float(o.hi[1]), 4) for o in spec.objects if o.object_type == "Cabinet"}
    for o in spec.objects:
        if o.object_type == "CounterTop":
            assert round(float(o.lo[1]), 4) in cabinet_tops, o.object_id


@pytest.mark.parametrize("scene", SCENES)
def test_small_objects_rest_on_their_receptacles(scene):
    spec = get_scene(scene)
    by_id = {o.object_id: o for o in spec.objects}
    small = [o for o in spec.objects if OBJECT_TYPES[o.object_type].pickupable]
    assert small
    for o in small:
        p = by_id[o.parent]
        assert OBJECT_TYPES[p.object_type].receptacle, o.object_id
        assert np.all(o.lo[[0, 2]] >= p.lo[[0, 2]] - 1e-6) and np.all(o.hi[[0, 2]] <= p.hi[[0, 2]] + 1e-6)
        if o.inside:
            # On the floor of the receptacle (or a Fridge shelf): within it, above its bottom.
            assert p.lo[1] < o.lo[1] < p.hi[1], o.object_id
        else:
            assert abs(o.lo[1] - p.hi[1]) < 1e-6, (o.object_id, float(o.lo[1]), float(p.hi[1]))


def test_bathroom_sinks_and_counters_are_at_counter_height():
    sinks = [o for s in SCENES[90:] for o in get_scene(s).objects if o.object_type == "Sink"]
    assert len(sinks) >= 30 and all(o.lo[1] > 0.5 for o in sinks)  # wall-hung, not on the floor
