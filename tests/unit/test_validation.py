"""The one validation layer (region/validation.py) and the request parsing on top of it (api/params.py)."""

from __future__ import annotations

import asyncio

import pytest

from metalplane.region import validation as v
from metalplane.region.api.params import Params, parse_body, parse_multipart, read_body
from metalplane.region.errors import Invalid, Refused, TooLarge


def refused(call, *args, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(Invalid) as info:
        call(*args, **kwargs)
    return info.value.errors


# -- text -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        ("a\x00b", "Null characters are not allowed."),
        ("\ud800", "Enter valid text (UTF-8, no control characters)."),  # a lone surrogate, from JSON "\ud800"
        ("x" * 11, "Ensure this value has at most 10 characters (it has 11)."),
    ],
)
def test_text_postgresql_cannot_store_is_refused_naming_the_field(value, message):
    assert refused(v.check_text, value, "description", 10) == {"description": [message]}


def test_text_within_the_rules_passes_unchanged():
    assert v.check_text("zône\ttab\nline", "description") == "zône\ttab\nline"
    assert refused(v.check_text, "  ", "name", required=True) == {"name": ["This field is required."]}


def test_large_fields_get_the_large_cap():
    assert v.default_max_length("content") == v.MAX_LARGE_TEXT
    assert v.default_max_length("description") == v.MAX_TEXT


# -- numbers and ids -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, message",
    [
        ("2147483648", "Ensure this value is less than or equal to 2147483647."),
        ("-2147483649", "Ensure this value is greater than or equal to -2147483648."),
        ("9" * 50, "Enter a whole number."),
        ("1.5", "Enter a whole number."),
        ("", "Enter a whole number."),
        ("0x10", "Enter a whole number."),
    ],
)
def test_integers_stay_within_postgresql(value, message):
    assert refused(v.check_int, value, "vid") == {"vid": [message]}


def test_integer_bounds_and_sizes():
    assert v.check_int(" 42 ", "mtu") == 42
    assert refused(v.check_int, "5", "mtu", 552) == {"mtu": ["Ensure this value is greater than or equal to 552."]}
    assert v.check_size("9223372036854775807", "size") == 2**63 - 1
    assert refused(v.check_size, "9223372036854775808", "size") == {
        "size": ["Ensure this value is less than or equal to 9223372036854775807."]
    }


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0", 0),
        ("5001", 5001),
        ("2147483647", 2**31 - 1),
        (" 7 ", 7),
        (12, 12),
        ("2147483648", None),
        ("-1", None),
        ("1e3", None),
        ("fabric-3", None),
        ("٣", None),
        ("", None),
        (None, None),
        (True, None),
        (2**31, None),
    ],
)
def test_as_id_names_only_ids_postgresql_can_hold(value, expected):
    assert v.as_id(value) == expected


@pytest.mark.parametrize(
    "value, ok",
    [
        ("abc123", True),
        ("ü-name", True),
        ("a\x00b", False),
        ("x" * 257, False),
        ("", False),
        ("tab\there", False),
    ],
)
def test_path_parts(value, ok):
    assert v.check_path_part(value) is ok


# -- addresses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["fe80::1%eth0", "fd02::1%25eth0", "1.2.3.999", "10.0.0.1/24", "010.0.0.1", "", "a\x00", "::g"]
)
def test_addresses_postgresql_refuses_are_refused(value):
    assert v.parse_ip(value) is None
    assert refused(v.check_ip, value, "start_ip") == {"start_ip": ["Enter a valid IPv4 or IPv6 address."]}


def test_addresses_are_normalised():
    assert v.check_ip(" 10.0.0.1 ", "ip") == "10.0.0.1"
    assert v.check_ip("2001:DB8:0::1", "ip") == "2001:db8::1"
    assert refused(v.check_ip, "10.0.0.1", "ip", version=6) == {"ip": ["Enter a valid IPv4 or IPv6 address."]}


@pytest.mark.parametrize("value", ["fe80::%eth0/64", "10.0.0.0/33", "10.0.0.0", "10.0.0.0/-1", "x/24"])
def test_networks_postgresql_refuses_are_refused(value):
    assert refused(v.check_cidr, value) == {"cidr": ["Required format: <network>/<prefixlen>."]}


def test_networks_drop_host_bits_and_may_be_bare_addresses_for_lookups():
    assert str(v.check_cidr("10.1.2.77/24")) == "10.1.2.0/24"
    assert str(v.parse_network("10.1.2.3", prefix_required=False)) == "10.1.2.3/32"


@pytest.mark.parametrize(
    "value, normal",
    [
        ("AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"),
        ("aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"),
        ("aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"),
        ("a:b:c:d:e:f", "0a:0b:0c:0d:0e:0f"),
        (" 00:11:22:33:44:55 ", "00:11:22:33:44:55"),
        ("00:11:22:33:44:5g", None),
        ("001122334455", None),
        ("00:11:22:33:44", None),
        ("aa-bb:cc-dd:ee-ff", None),
    ],
)
def test_macs_in_maas_forms(value, normal):
    assert v.normalise_mac(value) == normal


def test_mac_lists_refuse_anything_but_strings():
    assert v.check_macs(["AA-BB-CC-DD-EE-FF", "", "00:11:22:33:44:55"]) == ["aa:bb:cc:dd:ee:ff", "00:11:22:33:44:55"]
    assert refused(v.check_macs, [1]) == {"mac_addresses": ["'1' is not a valid MAC address."]}
    assert refused(v.check_macs, ["nope"], message="One or more MAC addresses is invalid.") == {
        "mac_addresses": ["One or more MAC addresses is invalid."]
    }


# -- names -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, message",
    [
        ("x" * 256, "Hostname is too long.  Maximum allowed is 255 characters."),
        ("a_b.maas", "Host label cannot contain underscore: 'a_b'."),
        ("a..b", "DNS name contains an empty label."),
        ("a" * 64, "Label is too long: '" + "a" * 64 + "'.  Maximum allowed is 63 characters."),
        ("-a", "Label cannot start or end with hyphen: '-a'."),
        ("bad!", "Label contains disallowed characters: 'bad!'."),
    ],
)
def test_hostnames_follow_maas(name, message):
    assert v.hostname_problem(name) == message


@pytest.mark.parametrize(
    "kind, name, message",
    [
        ("zone", "-x", "Enter a valid value."),
        ("zone", "x" * 257, "Ensure this value has at most 256 characters (it has 257)."),
        ("fabric", "has space", "Invalid fabric name: has space."),
        ("space", "a.b", "Invalid space name: a.b."),
        ("subnet", "bad name!", "Enter a valid value."),
        ("subnet", "n" * 256, "Ensure this value has at most 255 characters (it has 256)."),
        ("tag", "no space", "Enter a valid value."),
    ],
)
def test_model_names_follow_maas(kind, name, message):
    assert refused(v.check_name, kind, name) == {"name": [message]}


@pytest.mark.parametrize(
    "kind, name",
    [("zone", "row 1"), ("zone", "zône"), ("fabric", "fab_1-a"), ("subnet", "10.0.0.0/24 lab"), ("vlan", "v 1")],
)
def test_model_names_maas_accepts(kind, name):
    assert v.check_name(kind, name) == name


@pytest.mark.parametrize(
    "value, ok",
    [
        ("admin@example.com", True),
        ("admin@localhost", True),
        ("a.b+c@sub.example.org", True),
        ("x@[10.0.0.1]", True),
        ("plain", False),
        ("a@b", False),
        ("a@@b.com", False),
        ("a b@c.com", False),
        ("@example.com", False),
    ],
)
def test_email_addresses(value, ok):
    assert (v.email_problem(value) is None) is ok


def test_usernames():
    assert v.check_username("ops.admin+1@site") == "ops.admin+1@site"
    assert refused(v.check_username, "a/b") == {"username": [v.INVALID_USERNAME]}
    assert refused(v.check_username, "u" * 151) == {
        "username": ["Ensure this value has at most 150 characters (it has 151)."]
    }


def test_documents_jsonb_cannot_store_are_refused():
    assert v.check_document({"a": [1, "x", {"b": None}]}, "facts")
    assert refused(v.check_document, {"a": "x\x00"}, "facts") == {"facts": ["Null characters are not allowed."]}
    assert refused(v.check_document, {"a": float("nan")}, "facts") == {"facts": ["Numbers must be finite."]}
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert refused(v.check_document, deep, "facts") == {"facts": ["Nested deeper than 32 levels."]}


# -- request parsing ---------------------------------------------------------------------------------


async def chunks(*parts: bytes):
    for part in parts:
        yield part


def test_bodies_over_the_limit_are_refused_before_they_are_read():
    with pytest.raises(TooLarge):
        asyncio.run(read_body(chunks(b"never read"), "209715200", 1024))
    with pytest.raises(TooLarge):
        asyncio.run(read_body(chunks(b"x" * 600, b"x" * 600), None, 1024))
    assert asyncio.run(read_body(chunks(b"ab", b"cd"), "4", 1024)) == b"abcd"
    with pytest.raises(Refused):
        asyncio.run(read_body(chunks(b""), "nope", 1024))


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b"{not json"),
        ("application/json", b"[1, 2]"),
        ("multipart/form-data", b"no boundary"),
        ("multipart/form-data; boundary=x", b"\xff\xfe not multipart"),
        ("application/x-www-form-urlencoded", b"name=%ff"),
        ("text/plain", b"name=x"),
    ],
)
def test_broken_bodies_are_refused_as_a_whole(content_type, body):
    with pytest.raises(Refused):
        parse_body(content_type, body)


def test_a_part_in_an_unknown_charset_is_refused_naming_it():
    body = (
        b'--B\r\nContent-Disposition: form-data; name="name"\r\nContent-Type: text/plain; charset=x-nope\r\n\r\n'
        b"abc\r\n--B--\r\n"
    )
    assert refused(parse_multipart, "multipart/form-data; boundary=B", body) == {"name": ["Unknown charset: 'x-nope'."]}


def test_a_part_that_is_not_text_stays_bytes_and_is_refused_when_read_as_text():
    body = (
        b'--B\r\nContent-Disposition: form-data; name="description"\r\n\r\n\xff\xfe\r\n'
        b'--B\r\nContent-Disposition: form-data; name="content"; filename="f"\r\n\r\n\x00\x01\r\n--B--\r\n'
    )
    params = Params(parse_multipart("multipart/form-data; boundary=B", body))
    assert params.raw("content") == b"\x00\x01"
    assert refused(params.str, "description") == {"description": ["Expected text, got binary data."]}


def test_too_many_parts_are_refused_before_parsing():
    body = b"".join(b'--B\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n' for _ in range(1600)) + b"--B--\r\n"
    with pytest.raises(Refused, match="Too many parameters"):
        parse_multipart("multipart/form-data; boundary=B", body)


def test_json_bodies_become_parameters():
    assert parse_body("application/json", b'{"name": "x", "tags": ["a", "b"], "n": 5}') == [
        ("name", "x"),
        ("tags", "a"),
        ("tags", "b"),
        ("n", "5"),
    ]


def test_params_check_every_value_they_hand_out():
    p = Params(
        [("hostname", "a\x00b"), ("vid", "2147483648"), ("start_ip", "fe80::1%eth0"), ("id", "x")]
        + [("id", "y")] * 1000
        + [("ok", "fine")]
    )
    assert refused(p.str, "hostname") == {"hostname": ["Null characters are not allowed."]}
    assert refused(p.int, "vid") == {"vid": ["Ensure this value is less than or equal to 2147483647."]}
    assert refused(p.ip, "start_ip") == {"start_ip": ["Enter a valid IPv4 or IPv6 address."]}
    assert refused(p.get_list, "id") == {"id": ["Ensure this list has at most 1000 items (it has 1001)."]}
    assert p.str("ok") == "fine" and p.ip("absent") is None
    assert p.given({"ok": "str", "missing": "int"}) == {"ok": "fine"}


# -- the API's hash and 404 model names (api/framework.py) ----------------------------------------------


def test_the_api_hash_is_maas_algorithm_over_a_canonical_description():
    import hashlib
    import json

    from metalplane.region.api.framework import Handler, _canonical, api_hash

    # lists sorted, dicts as sorted pairs, None < numbers < text < tuples (Python 2's order, as MAAS)
    assert _canonical({"b": [2, None, "x", [1]], "a": None}) == (("a", None), ("b", (None, 2, "x", (1,))))
    demo = Handler("DemoHandler", "demo/{id}/", "Demo.")

    @demo.read
    async def read(ctx):
        """Read."""

    expected = hashlib.sha1(
        json.dumps(
            _canonical(
                {
                    "doc": "MAAS API",
                    "resources": [{"name": "DemoHandler", "anon": None, "auth": demo.describe(None)}],
                    "handlers": [demo.describe(None)],
                }
            )
        ).encode("ascii")
    ).hexdigest()
    assert api_hash([demo]) == expected and "uri" not in demo.describe(None)


@pytest.mark.parametrize(
    "handler, param, model",
    [
        ("FabricHandler", "id", "Fabric"),
        ("VlanHandler", "vid", "VLAN"),
        ("VlanHandler", "fabric_id", "Fabric"),
        ("VlansHandler", "fabric_id", "Fabric"),
        ("MachineHandler", "system_id", "Machine"),
        ("InterfacesHandler", "system_id", "Node"),
        ("RackControllerHandler", "system_id", "RackController"),
        ("UserHandler", "username", "User"),
        ("FileHandler", "filename", "FileStorage"),
    ],
)
def test_404s_name_maas_models(handler, param, model):
    from metalplane.region.api.framework import Handler

    assert Handler(handler, "x/", "").model_for(param) == model
