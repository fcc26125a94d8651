"""Names, arguments and URLs for `metalplane PROFILE HANDLER ACTION`, as maascli derives them."""

import pytest

from metalplane.cli.api_help import action_help, handler_help, profile_help
from metalplane.cli.describe_commands import (
    DescribeError,
    FileArg,
    HandlerSpec,
    action_url,
    build_handlers,
    handler_command_name,
    parse_action_args,
    parse_data_item,
    parse_docstring,
    safe_name,
)


@pytest.mark.parametrize(
    "handler, cli",
    [
        ("RackControllersHandler", "rack-controllers"),
        ("RackControllerHandler", "rack-controller"),
        ("RegionControllersHandler", "region-controllers"),
        ("IPRangesHandler", "ipranges"),
        ("IPRangeHandler", "iprange"),
        ("VlansHandler", "vlans"),
        ("VlanHandler", "vlan"),
        ("BootResourcesHandler", "boot-resources"),
        ("AnonMachinesHandler", "anon-machines"),
        ("MaasHandler", "maas"),
        ("SSHKeysHandler", "sshkeys"),
        ("AccountHandler", "account"),
        ("DNSResourceRecordsHandler", "dnsresource-records"),
    ],
)
def test_handler_command_name(handler, cli):
    assert handler_command_name(handler) == cli


@pytest.mark.parametrize(
    "action, cli",
    [
        ("create_authorisation_token", "create-authorisation-token"),
        ("power_parameters", "power-parameters"),
        ("reserved_ip_ranges", "reserved-ip-ranges"),
        ("read", "read"),
        ("whoami", "whoami"),
    ],
)
def test_action_name(action, cli):
    assert safe_name(action) == cli


def test_parse_docstring_title_and_body():
    title, body = parse_docstring("Create a\n    subnet.\n\n    :param cidr: The CIDR.\n    :type cidr: unicode\n")
    assert title == "Create a subnet."
    assert body == ":param cidr: The CIDR.\n:type cidr: unicode"
    assert parse_docstring(None) == ("", "")
    assert parse_docstring("Only a title.") == ("Only a title.", "")


def action(name, method="GET", op=None, doc="Doc."):
    return {"name": name, "method": method, "op": op, "restful": op is None, "doc": doc}


def handler(name, actions, params=(), path=None):
    path = path or "/MAAS/api/2.0/" + name.lower() + "/"
    return {
        "name": name,
        "doc": f"{name} doc.\n\nMore.",
        "params": list(params),
        "path": path,
        "uri": "http://describe-host:5240" + path,
        "actions": actions,
    }


DESCRIPTION = {
    "doc": "MAAS API",
    "hash": "abc",
    "resources": [
        {"name": "VersionHandler", "anon": handler("VersionHandler", [action("read")]), "auth": None},
        {
            "name": "MachinesHandler",
            "anon": handler(
                "AnonMachinesHandler", [action("read", doc="Anon read."), action("is_registered", op="is_registered")]
            ),
            "auth": handler(
                "MachinesHandler",
                [
                    action("read", doc="Auth read."),
                    action("create", "POST"),
                    action("power_parameters", op="power_parameters"),
                ],
            ),
        },
        {"name": "EmptyHandler", "anon": None, "auth": handler("EmptyHandler", [])},
        {
            "name": "VlanHandler",
            "anon": None,
            "auth": handler(
                "VlanHandler",
                [action("update", "PUT", doc="Update VLAN.\n\n:param name: Name.")],
                params=["fabric_id", "vid"],
                path="/MAAS/api/2.0/fabrics/{fabric_id}/vlans/{vid}/",
            ),
        },
    ],
}


def test_build_handlers_authenticated_merges_auth_then_anon():
    handlers = build_handlers(DESCRIPTION, anonymous=False)
    assert list(handlers) == ["machines", "version", "vlan"]  # sorted by resource name; no-action resource skipped
    machines = handlers["machines"]
    assert machines.api_name == "MachinesHandler"
    assert sorted(machines.actions) == ["create", "is-registered", "power-parameters", "read"]
    assert machines.actions["read"].title == "Auth read."
    assert machines.actions["power-parameters"].op == "power_parameters"
    assert machines.title == "MachinesHandler doc." and machines.body == "More."
    vlan = handlers["vlan"]
    assert vlan.params == ("fabric_id", "vid")
    assert vlan.actions["update"].method == "PUT" and vlan.actions["update"].takes_keywords


def test_build_handlers_anonymous_uses_anon_actions_only():
    handlers = build_handlers(DESCRIPTION, anonymous=True)
    assert list(handlers) == ["machines", "version"]
    machines = handlers["machines"]
    assert sorted(machines.actions) == ["is-registered", "read"]
    assert machines.actions["read"].title == "Anon read."
    assert machines.api_name == "MachinesHandler"  # represented as the auth handler, like maascli


@pytest.mark.parametrize("bad", [{}, {"resources": "x"}, {"resources": [{"anon": None}]}, []])
def test_build_handlers_rejects_malformed(bad):
    with pytest.raises(DescribeError):
        build_handlers(bad, anonymous=False)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name=value", ("name", "value")),
        ("name=a=b", ("name", "a=b")),
        ("name=", ("name", "")),
        ("name=a@=b", ("name", "a@=b")),
        ("content@=/tmp/f", ("content", FileArg("/tmp/f"))),
        ("k@=a=b", ("k", FileArg("a=b"))),
    ],
)
def test_parse_data_item(text, expected):
    assert parse_data_item(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=value", "@=file", ""])
def test_parse_data_item_rejects(text):
    with pytest.raises(DescribeError, match="key=value"):
        parse_data_item(text)


def test_parse_action_args_positional_then_repeated_data():
    inv = parse_action_args(["fabric_id", "vid"], ["1", "0", "name=x", "dns_servers=a", "dns_servers=b"])
    assert inv.positional == {"fabric_id": "1", "vid": "0"}
    assert inv.data == [("name", "x"), ("dns_servers", "a"), ("dns_servers", "b")]
    assert not (inv.debug or inv.insecure or inv.help)


def test_parse_action_args_flags_anywhere():
    inv = parse_action_args(["id"], ["-d", "7", "--insecure", "a=b"])
    assert inv.debug and inv.insecure and inv.positional == {"id": "7"} and inv.data == [("a", "b")]
    inv = parse_action_args([], ["-dk"])
    assert inv.debug and inv.insecure


def test_parse_action_args_double_dash_and_negative_numbers():
    inv = parse_action_args(["id"], ["--", "-d"])
    assert inv.positional == {"id": "-d"} and not inv.debug
    assert parse_action_args(["id"], ["-1"]).positional == {"id": "-1"}
    assert parse_action_args([], ["comment=-x"]).data == [("comment", "-x")]


def test_parse_action_args_errors():
    with pytest.raises(DescribeError, match="missing FABRIC_ID VID"):
        parse_action_args(["fabric_id", "vid"], [])
    with pytest.raises(DescribeError, match="missing VID"):
        parse_action_args(["fabric_id", "vid"], ["1"])
    with pytest.raises(DescribeError, match="unknown option"):
        parse_action_args([], ["--bogus"])
    with pytest.raises(DescribeError, match="key=value"):
        parse_action_args([], ["bogus"])


def test_parse_action_args_help_wins_over_errors():
    assert parse_action_args(["id"], ["--help"]).help
    assert parse_action_args(["id"], ["-h", "--bogus"]).help


def vlan_handler(path="/MAAS/api/2.0/fabrics/{fabric_id}/vlans/{vid}/", uri="http://elsewhere/x/{fabric_id}/{vid}/"):
    return HandlerSpec(
        name="vlan", api_name="VlanHandler", title="", body="", params=("fabric_id", "vid"), path=path, uri=uri
    )


def test_action_url_uses_profile_root_not_describe_host():
    url = action_url("https://lb.example:443/MAAS/api/2.0/", vlan_handler(), {"fabric_id": "3", "vid": "10"})
    assert url == "https://lb.example:443/MAAS/api/2.0/fabrics/3/vlans/10/"


def test_action_url_quotes_values_and_falls_back_to_uri():
    h = HandlerSpec(
        name="zone",
        api_name="ZoneHandler",
        title="",
        body="",
        params=("name",),
        path="/MAAS/api/2.0/zones/{name}/",
        uri="",
    )
    assert action_url("http://h/MAAS/api/2.0/", h, {"name": "a b?"}) == "http://h/MAAS/api/2.0/zones/a%20b%3F/"
    assert (
        action_url("http://h/MAAS/api/2.0/", vlan_handler(path=""), {"fabric_id": "1", "vid": "2"})
        == "http://elsewhere/x/1/2/"
    )
    with pytest.raises(DescribeError, match="VID"):
        action_url("http://h/MAAS/api/2.0/", vlan_handler(), {"fabric_id": "1"})
    with pytest.raises(DescribeError, match="no path"):
        action_url("http://h/MAAS/api/2.0/", vlan_handler(path="", uri=""), {})


def test_help_texts():
    handlers = build_handlers(DESCRIPTION, anonymous=False)
    text = profile_help("p", "http://h/MAAS/api/2.0/", handlers)
    assert "  machines  MachinesHandler doc." in text and "vlan" in text
    text = handler_help("p", handlers["machines"])
    assert "power-parameters" in text and "Auth read." in text
    vlan = handlers["vlan"]
    text = action_help("p", vlan, vlan.actions["update"])
    assert text.startswith("usage: metalplane p vlan update [-h] [-d] [-k] FABRIC_ID VID [key=value ...]")
    assert "keyword arguments" in text and ":param name: Name." in text
    read = handlers["machines"].actions["read"]
    assert "keyword arguments" not in action_help("p", handlers["machines"], read)
