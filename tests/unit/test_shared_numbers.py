"""Numbers other processes depend on: stored node types and advisory lock ids.

Both are shared with peers of other versions (rows in the database, regions of
the previous release during an upgrade), so changing one is a bug.
"""

from metalplane.region.db.locks import Lock
from metalplane.rpc.nodes import RACK_TYPES, REGION_TYPES, NodeType


def test_node_types_have_maas_numbers_and_names():
    assert {t.name: int(t) for t in NodeType} == {
        "MACHINE": 0,
        "DEVICE": 1,
        "RACK_CONTROLLER": 2,
        "REGION_CONTROLLER": 3,
        "REGION_AND_RACK_CONTROLLER": 4,
    }
    assert NodeType.REGION_AND_RACK_CONTROLLER.label == "Region and rack controller"
    assert set(RACK_TYPES) == {2, 4} and set(REGION_TYPES) == {3, 4}


def test_advisory_lock_ids_never_change_and_never_collide():
    assert {lock.name: int(lock) for lock in Lock} == {
        "DEFAULT_FABRIC": 7001,
        "RACK_REGISTRATION": 7002,
        "REBALANCE": 7003,
        "BMC_OWNERS": 7004,
        "SUBNET_NETWORKS": 7020,
        "BOOT_IMPORT": 0x6D70626F,
        "MIGRATION": 0x6D706C6E,
    }
    assert len({int(lock) for lock in Lock}) == len(Lock)
