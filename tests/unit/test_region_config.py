import stat
from types import SimpleNamespace

import pytest

from metalplane.config.files import ConfigError
from metalplane.config.region import load_region_config, reset_region_config, update_region_config
from metalplane.region.db.engine import conninfo, ordered_hosts, remember_primary, split_host
from metalplane.region.services.controllers import combined_type
from metalplane.rpc.nodes import NodeType


def test_update_writes_mode_0640_and_keeps_other_keys(tmp_path):
    path = tmp_path / "regiond.conf"
    update_region_config(path, {"database_host": "db1", "num_workers": 8})
    update_region_config(path, {"maas_url": "http://10.0.0.1:5240/MAAS"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    config = load_region_config(path)
    assert (config.database_host, config.num_workers) == ("db1", 8)


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"num_workers": "many"}, "num_workers"),
        ({"num_workers": 0}, "num_workers"),
        ({"database_port": 70000}, "database_port"),
        ({"maas_url": "ftp://x"}, "maas_url"),
        ({"database_host": []}, "database_host"),
        ({"database_host": "db1:abc"}, "database_host"),
        ({"database_host": ["db1", "db2:99999"]}, "database_host"),
        ({"database_host": "[fd00::1"}, "database_host"),
        ({"database_host": "db1,db2"}, "database_host"),  # libpq's list separator: give a list instead
        ({"no_such_key": 1}, "no_such_key"),
    ],
)
def test_invalid_value_names_the_key_and_writes_nothing(tmp_path, changes, key):
    path = tmp_path / "regiond.conf"
    update_region_config(path, {"num_workers": 2})
    before = path.read_bytes()
    with pytest.raises(ConfigError) as err:
        update_region_config(path, changes)
    assert f"{path}: {key}:" in str(err.value)
    assert path.read_bytes() == before


def test_reset_returns_a_key_to_its_default(tmp_path):
    path = tmp_path / "regiond.conf"
    update_region_config(path, {"num_workers": 6})
    assert reset_region_config(path, ["num_workers"]).num_workers == 4


def test_bad_yaml_says_where(tmp_path):
    path = tmp_path / "regiond.conf"
    path.write_text("num_workers: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_region_config(path)


def test_several_database_hosts_become_one_read_write_conninfo(tmp_path):
    config = update_region_config(tmp_path / "c", {"database_host": ["db1", "db2:5433", "[fd00::1]:6432"]})
    info = conninfo(config)
    assert "host=db1,db2,fd00::1" in info
    assert "port=5432,5433,6432" in info
    assert "target_session_attrs=read-write" in info
    assert split_host("/var/run/pg", 5432) == ("/var/run/pg", 5432)


def test_new_connections_try_the_last_primary_first(tmp_path):
    config = update_region_config(tmp_path / "c", {"database_host": ["db1", "db2", "db3:6432"]})
    assert ordered_hosts(config) == [("db1", 5432), ("db2", 5432), ("db3", 6432)]
    remember_primary(config, SimpleNamespace(info=SimpleNamespace(host="db3", port=6432)))
    assert ordered_hosts(config) == [("db3", 6432), ("db1", 5432), ("db2", 5432)]
    assert "host=db3,db1,db2" in conninfo(config) and "port=6432,5432,5432" in conninfo(config)
    remember_primary(config, SimpleNamespace(info=SimpleNamespace(host="elsewhere", port=5432)))
    assert ordered_hosts(config)[0] == ("db1", 5432)  # a host not in the list changes nothing
    other = update_region_config(tmp_path / "d", {"database_host": ["db1", "db2"]})
    assert ordered_hosts(other)[0] == ("db1", 5432)  # another host list has its own memory


def test_region_and_rack_on_one_host_is_one_node():
    rack, region, both = NodeType.RACK_CONTROLLER, NodeType.REGION_CONTROLLER, NodeType.REGION_AND_RACK_CONTROLLER
    assert combined_type(region, rack) == both
    assert combined_type(rack, region) == both
    assert combined_type(both, rack) == both
    assert combined_type(rack, rack) == rack
