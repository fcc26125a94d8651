"""A worker's connection rows follow the racks it holds (connections.match_process_connections):
rows are keyed by (rack, worker), so a late clean-up of a rack's old link, or a LinkLost about
it reported through another region, could take away the row of its new link to the same worker."""

from __future__ import annotations

import secrets

from sqlalchemy import delete, select

from metalplane.region.bootstrap import run_db
from metalplane.region.db.tables import nodes, region_processes, rpc_connections
from metalplane.region.services import connections, controllers
from metalplane.region.services import racks as rack_services


async def fake_worker(conn, region_sid: str, hostname: str) -> int:
    """A region with one worker process row (no process runs): its row id."""
    region_id = await controllers.register_region(
        conn, region_sid, hostname, "0.1", controllers.RegionInfo(1, 10, 5240)
    )
    await controllers.register_process(conn, region_id, 0, 4242, "127.0.0.1", 1, 1)
    query = select(region_processes.c.id).where(region_processes.c.region_id == region_id)
    return (await conn.execute(query)).scalar_one()


def test_a_workers_rows_are_made_to_match_the_racks_it_holds(shared_region):
    tag = secrets.token_hex(3)
    region_sid = controllers.new_system_id()
    rack_sids = [controllers.new_system_id() for _ in range(3)]
    stranger_sid = controllers.new_system_id()

    async def scenario(conn):
        process = await fake_worker(conn, region_sid, f"rows-region-{tag}")
        ids = [
            await rack_services.register_rack(conn, sid, f"rows-rack-{i}-{tag}", "0.1", [])
            for i, sid in enumerate(rack_sids)
        ]
        stranger = await rack_services.register_rack(conn, stranger_sid, f"rows-stranger-{tag}", "0.1", [])
        held, lost_row, stale = ids
        await connections.add_connection(conn, stale, process)  # a link this worker no longer holds
        # `held` and `lost_row` are held; `lost_row`'s row was taken away by a late clean-up.
        await connections.add_connection(conn, held, process)

        def rows():
            return conn.execute(select(rpc_connections.c.rack_id).where(rpc_connections.c.process_id == process))

        linked = {rack_sids[0], rack_sids[1]}
        seen = set(rack_sids)
        fixed = await connections.match_process_connections(conn, process, {held, lost_row}, linked, seen)
        after = set((await rows()).scalars())
        again = await connections.match_process_connections(conn, process, {held, lost_row}, linked, seen)
        # A rack still joining (its session does not know its node id yet) keeps its row.
        joining = await connections.match_process_connections(conn, process, {held}, linked, seen)
        # A rack deleted meanwhile (no node row) is not inserted.
        await conn.execute(delete(nodes).where(nodes.c.id == lost_row))
        gone = await connections.match_process_connections(conn, process, {held, lost_row}, linked, seen)
        # A row of a rack that never linked here is not this worker's to judge.
        await connections.add_connection(conn, stranger, process)
        none_held = await connections.match_process_connections(conn, process, set(), set(), seen)
        left = set((await rows()).scalars())
        await conn.execute(delete(nodes).where(nodes.c.system_id.in_([region_sid, stranger_sid, *rack_sids])))
        return fixed, after, again, joining, gone, none_held, left, ids + [stranger]

    fixed, after, again, joining, gone, none_held, left, (held, lost_row, _stale, stranger) = run_db(
        shared_region.config, scenario
    )
    assert after == {held, lost_row} and fixed == 2  # the stale row removed, the lost one back
    assert again == 0 and joining == 0  # nothing to do once they match
    assert gone == 0
    assert none_held == 1 and left == {stranger}


def test_unchanged_racks_rejoin_together_and_the_others_are_left_to_register_alone(shared_region):
    from sqlalchemy import update

    from metalplane.region.db.tables import controller_info

    tag = secrets.token_hex(3)
    region_sid = controllers.new_system_id()
    same, renamed, refused, new = (controllers.new_system_id() for _ in range(4))

    async def scenario(conn):
        process = await fake_worker(conn, region_sid, f"rejoin-region-{tag}")
        ids = {
            sid: await rack_services.register_rack(conn, sid, f"rejoin-{i}-{tag}", "0.1", [])
            for i, sid in enumerate((same, renamed, refused))
        }
        await conn.execute(
            update(controller_info).where(controller_info.c.node_id == ids[refused]).values(refusal="version")
        )
        joined = await rack_services.register_known_racks(
            conn,
            process,
            [
                rack_services.Rejoin(same, f"rejoin-0-{tag}", "0.1", []),
                rack_services.Rejoin(renamed, "another-name", "0.1", []),
                rack_services.Rejoin(refused, f"rejoin-2-{tag}", "0.1", []),
                rack_services.Rejoin(new, f"rejoin-new-{tag}", "0.1", []),
            ],
        )
        # The same rack with an interface it did not have before is not unchanged.
        # Joined again (another link of the same rack): it was connected already.
        again = await rack_services.register_known_racks(
            conn, process, [rack_services.Rejoin(same, f"rejoin-0-{tag}", "0.1", [])]
        )
        changed = await rack_services.register_known_racks(
            conn, process, [rack_services.Rejoin(same, f"rejoin-0-{tag}", "0.1", [{"name": "eth9", "mac": None}])]
        )
        recorded = set(
            (
                await conn.execute(select(rpc_connections.c.rack_id).where(rpc_connections.c.process_id == process))
            ).scalars()
        )
        await conn.execute(delete(nodes).where(nodes.c.system_id.in_([region_sid, same, renamed, refused])))
        return joined, again, changed, recorded, ids

    joined, again, changed, recorded, ids = run_db(shared_region.config, scenario)
    assert joined == ({same: ids[same]}, set())  # not connected anywhere before
    assert again == ({same: ids[same]}, {same})
    assert changed == ({}, set())
    assert recorded == {ids[same]}
