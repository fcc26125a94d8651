"""The node API's pure rules: machines read filters, hostnames, swap sizes, architectures,
the hardware document and tag evaluation, script statuses, disks from facts, event paging, BSON."""

from __future__ import annotations

import pytest

from metalplane.region import validation
from metalplane.region.api.render_nodes import bson_document
from metalplane.region.errors import Invalid, Refused
from metalplane.region.services import architectures, events, hardware_xml, node_fields, node_filters, storage
from metalplane.region.services import script_results as scripts

KNOWN = node_filters.Known(
    zones=frozenset({"default", "row-1"}),
    pools=frozenset({"default"}),
    tags=frozenset({"gpu", "ssd"}),
    owners=frozenset({"admin"}),
    architectures=frozenset({"amd64/generic", "arm64/generic"}),
    subnets=({"id": 3, "cidr": "10.0.0.0/24", "name": "lan"},),
    vlans=({"id": 5, "vid": 0, "name": None, "fabric_id": 1, "fabric_name": "fabric-1"},),
)
NODE = {
    "system_id": "abc123",
    "hostname": "quiet-fox",
    "domain": "maas",
    "zone": "row-1",
    "pool": "default",
    "status": 4,
    "architecture": "amd64/generic",
    "tags": ["gpu", "ssd"],
    "agent_name": "",
    "owner": None,
    "cpu_count": 8,
    "memory": 16384,
    "cpu_speed": 0,
    "power_state": "off",
    "macs": ["52:54:00:00:00:01"],
    "fabrics": ["fabric-1"],
    "fabric_classes": [],
    "vlans": [5],
    "subnets": [3],
    "link_speeds": [1000],
}


def passes(**given: list[str]) -> bool:
    return node_filters.matches(node_filters.parse(given, KNOWN), NODE)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"hostname": ["quiet-fox", "other"]}, True),
        ({"hostname": ["other"]}, False),
        ({"not_hostname": ["quiet-fox"]}, False),
        ({"mac_address": ["52-54-00-00-00-01"]}, True),
        ({"zone": ["row-1"]}, True),
        ({"not_in_zone": ["row-1"]}, False),
        ({"status": ["=ready"]}, True),
        ({"status": ["new"]}, False),
        ({"simple_status": ["ready"]}, True),
        ({"arch": ["amd64"]}, True),
        ({"arch": ["arm64"]}, False),
        ({"tags": ["gpu,ssd"]}, True),
        ({"tags": ["gpu"], "not_tags": ["ssd"]}, False),
        ({"cpu_count": ["8"], "mem": ["16384"]}, True),
        ({"cpu_count": ["9"]}, False),
        ({"link_speed": ["1000"]}, True),
        ({"subnets": ["cidr:10.0.0.0/24"]}, True),
        ({"subnets": ["lan"]}, True),
        ({"vlans": ["fabric:fabric-1"]}, True),
        ({"not_vlans": ["id:5"]}, False),
        ({"owner": ["admin"]}, False),
        ({"power_state": ["off"]}, True),
        ({"op": ["read"], "comment": ["x"]}, True),
    ],
)
def test_filters(given, expected):
    assert passes(**given) is expected


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        ({"zone": ["nope", "row-1", "gone"]}, {"zone": ["No such zone(s): nope, gone."]}),
        ({"tags": ["x y"]}, {"tags": ["No such tag(s): 'x', 'y'."]}),
        ({"status": ["asleep"]}, {"status": ["Select a valid choice. asleep is not one of the available choices."]}),
        ({"mem": ["lots"]}, {"mem": ["Invalid memory: number of MiB required."]}),
        ({"subnets": ["cidr:192.0.2.0/24"]}, {"subnets": ["No matching subnets found."]}),
        ({"vlans": ["vid:99"]}, {"vlans": ["No matching VLANs found."]}),
        (
            {"shape": ["round"], "pool": ["nope"]},
            {"shape": ["No such constraint."], "pool": ["No such pool(s): nope."]},
        ),
    ],
)
def test_filter_errors_name_their_field(given, errors):
    with pytest.raises(Invalid) as caught:
        node_filters.parse(given, KNOWN)
    assert caught.value.errors == errors


def test_label_constraints_are_refused_not_ignored():
    with pytest.raises(Refused):
        node_filters.parse({"storage": ["root:10"]}, KNOWN)


@pytest.mark.parametrize(
    ("hostname", "error"),
    [
        ("good-name", None),
        ("good.maas", None),
        ("x" * 64, f"Label is too long: {'x' * 64!r}.  Maximum allowed is 63 characters."),
        ("a_b", "Host label cannot contain underscore: 'a_b'."),
        ("a..b", "DNS name contains an empty label."),
        ("bad!", "Label contains disallowed characters: 'bad!'."),
        ("a" * 256, "Hostname is too long.  Maximum allowed is 255 characters."),
    ],
)
def test_hostname_rules(hostname, error):
    assert validation.hostname_problem(hostname) == error


def test_a_domain_suffix_must_be_the_default_domain():
    assert node_fields.clean_hostname("box.maas") == "box"
    with pytest.raises(Invalid):
        node_fields.clean_hostname("box.example.com")


@pytest.mark.parametrize(("text", "size"), [("", None), ("1024", 1024), ("2K", 2000), ("3G", 3 * 10**9)])
def test_swap_sizes(text, size):
    assert node_fields.parse_swap_size(text) == size


def test_bad_swap_size():
    with pytest.raises(Invalid) as caught:
        node_fields.parse_swap_size("12Q")
    assert caught.value.errors == {"swap_size": ["Invalid size for swap: 12Q"]}


def test_architectures():
    assert architectures.normalise("amd64") == "amd64/generic"
    assert architectures.normalise("arm64", "hwe-22.04") == "arm64/hwe-22.04"
    assert architectures.is_known("amd64/hwe-22.04", set())
    assert not architectures.is_known("vax/generic", set())
    assert architectures.is_known("custom/thing", {"custom/thing"})
    message = architectures.invalid("vax", set()).errors["architecture"][0]
    assert message.startswith("'vax' is not a valid architecture.  It should be one of: 'amd64/generic',")


FACTS = {
    "cpu_model": "Xeon",
    "firmware": "uefi",
    "disks": [
        {
            "name": "sda",
            "size_bytes": 2 * 10**12,
            "model": "HDD",
            "serial": "S1",
            "rotational": True,
            "removable": False,
            "partitions": [{"number": 1, "size_bytes": 10**9}],
        }
    ],
    "interfaces": [
        {"name": "eth0", "mac": "52:54:00:00:00:01", "driver": "ixgbe", "link_up": True, "speed_mbps": 10000}
    ],
}
MACHINE = {
    "hostname": "quiet-fox",
    "architecture": "amd64/generic",
    "cpu_count": 16,
    "memory": 65536,
    "boot_method": "uefi",
    "hardware": FACTS,
}


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ('count(//node[@class="processor"]) >= 16', True),
        ('count(//node[@class="processor"]) > 16', False),
        ('//node[@id="memory"]/size >= 68719476736', True),
        ('//node[@class="disk"]/size > 1000000000000', True),
        ('//node[@class="disk"]/capabilities/capability[@id="rotational"]', True),
        ('//node[@class="network"]/configuration/setting[@id="driver"][@value="ixgbe"]', True),
        ('//node[@class="system"]/configuration/setting[@id="firmware"][@value="bios"]', False),
        ('//node[@class="processor"]/product = "Xeon"', True),
        ("nosuchfunction(1)", False),
    ],
)
def test_tag_definitions_over_the_hardware_document(definition, expected):
    document = hardware_xml.hardware_document(MACHINE)
    assert hardware_xml.evaluate(hardware_xml.compile_definition(definition), document) is expected


def test_script_statuses():
    assert [scripts.result_status(s) for s in (None, 0, 1, 143)] == [
        scripts.RUNNING,
        scripts.PASSED,
        scripts.FAILED,
        scripts.TIMEDOUT,
    ]
    assert scripts.overall_status([]) == scripts.UNKNOWN
    assert scripts.overall_status([scripts.PASSED, scripts.FAILED, scripts.TIMEDOUT]) == scripts.FAILED
    assert scripts.overall_status([scripts.PASSED, scripts.TIMEDOUT]) == scripts.TIMEDOUT
    running = {"ended": None, "results": [{"exit_status": 0}]}
    assert scripts.set_status(running) == scripts.RUNNING
    assert scripts.set_status({**running, "ended": "now"}) == scripts.PASSED
    assert scripts.runtime_text(3725) == "1:02:05" and scripts.runtime_text(None) == ""


def test_disks_from_facts():
    rows = storage.disk_rows(
        FACTS["disks"]
        + [{"name": "", "size_bytes": 1}, {"name": "x", "size_bytes": -5}, {"name": "y", "size_bytes": 2**64}]
    )
    assert [r["name"] for r in rows] == ["sda"]
    assert rows[0]["tags"] == ["rotary"] and rows[0]["id_path"] == "/dev/disk/by-id/HDD_S1"
    assert rows[0]["partitions"] == [{"number": 1, "size_bytes": 10**9}]


def test_event_paging_uris():
    shown = [{"id": 9}, {"id": 7}]
    next_uri, prev_uri = events.page_uris("/MAAS/api/2.0/events/", [("op", "query"), ("id", "abc")], shown, None, None)
    assert next_uri == "/MAAS/api/2.0/events/?op=query&id=abc&after=9"
    assert prev_uri == "/MAAS/api/2.0/events/?op=query&id=abc&before=7"
    assert events.page_uris("/e/", [], [], None, None) == ("/e/?", None)
    assert events.page_uris("/e/", [], [], 4, None) == ("/e/?", "/e/?before=5")


def test_bson_document():
    document = bson_document({"lshw": b"<list/>", "lldp": None})
    import bson  # pymongo's (python-libmaas brings it): an independent decoder

    assert bson.decode(document) == {"lshw": b"<list/>", "lldp": None}


def test_node_macs_are_read_as_validation_reads_them_and_every_bad_one_is_named():
    assert node_fields.parse_macs(["52-54-00-AB-CD-01", " ", "5254.00ab.cd01", "a:b:c:d:e:f"]) == [
        "52:54:00:ab:cd:01",
        "0a:0b:0c:0d:0e:0f",
    ]
    with pytest.raises(Invalid) as refused:
        node_fields.parse_macs(["zz", "52:54:00:ab:cd:01", "1:2"])
    assert refused.value.errors == {
        "mac_addresses": [
            "One or more MAC addresses is invalid. "
            "('zz' is not a valid MAC address. — '1:2' is not a valid MAC address.)"
        ]
    }
