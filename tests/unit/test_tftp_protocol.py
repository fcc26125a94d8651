"""TFTP wire format, option negotiation and path rules: pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metalplane.rack.tftp.protocol import (
    ERR_ACCESS,
    ERR_OPTIONS,
    RRQ,
    WRQ,
    Limits,
    MalformedPacket,
    TftpError,
    build_oack,
    build_request,
    negotiate,
    netascii_decode,
    netascii_encode,
    parse_oack,
    parse_request,
    sanitize_path,
)
from metalplane.rack.tftp.sources import machine_key, normalise_mac


def test_parse_request_with_options_case_insensitive():
    packet = build_request(RRQ, "pxelinux.0", "OCTET", {"BlkSize": 1468, "tsize": 0, "windowSize": 8})
    request = parse_request(packet)
    assert request.opcode == RRQ
    assert request.filename == "pxelinux.0"
    assert request.mode == "octet"
    assert request.options == {"blksize": "1468", "tsize": "0", "windowsize": "8"}


def test_parse_request_first_occurrence_of_an_option_wins_and_trailing_name_is_ignored():
    packet = b"\x00\x01f\x00octet\x00blksize\x00512\x00BLKSIZE\x001024\x00dangling\x00"
    assert parse_request(packet).options == {"blksize": "512"}


def test_parse_write_request():
    assert parse_request(build_request(WRQ, "x")).opcode == WRQ


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        b"\x00\x01",
        b"\x00\x03\x00\x01data",  # DATA is not a request
        b"\x00\x01file\x00octet",  # mode not NUL terminated
        b"\x00\x01\x00octet\x00",  # empty filename
        b"\x00\x01file\x00",  # no mode
    ],
)
def test_parse_request_refuses_malformed(packet):
    with pytest.raises(MalformedPacket):
        parse_request(packet)


def test_parse_request_non_utf8_filename_falls_back_to_latin1():
    assert parse_request(b"\x00\x01caf\xe9\x00octet\x00").filename == "caf\xe9"


@given(
    st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), min_size=1),
    st.dictionaries(st.sampled_from(["blksize", "tsize", "timeout", "windowsize", "x-opt"]), st.integers(0, 70000)),
)
def test_request_round_trip(filename, options):
    request = parse_request(build_request(RRQ, filename, "octet", options))
    assert request.filename == filename
    assert request.options == {k: str(v) for k, v in options.items()}


def test_oack_round_trip():
    assert parse_oack(build_oack({"blksize": 1468, "tsize": 99})) == {"blksize": "1468", "tsize": "99"}


LIMITS = Limits(max_blksize=1468, max_windowsize=64, default_timeout=1.0)


def test_negotiate_no_options_means_no_oack():
    result = negotiate({}, 1000, LIMITS)
    assert (result.blksize, result.windowsize, result.timeout, result.oack) == (512, 1, 1.0, None)


def test_negotiate_unknown_options_are_ignored():
    assert negotiate({"multicast": "", "rollover": "0"}, 10, LIMITS).oack is None


def test_negotiate_everything():
    result = negotiate({"blksize": "1024", "tsize": "0", "timeout": "3", "windowsize": "16"}, 12345, LIMITS)
    assert result.blksize == 1024 and result.windowsize == 16 and result.timeout == 3.0
    assert result.oack == {"blksize": "1024", "timeout": "3", "tsize": "12345", "windowsize": "16"}


@pytest.mark.parametrize("asked, granted", [(8, 8), (512, 512), (1468, 1468), (1469, 1468), (65464, 1468)])
def test_negotiate_blksize_lowered_to_the_limit(asked, granted):
    result = negotiate({"blksize": str(asked)}, 0, LIMITS)
    assert result.blksize == granted and result.oack == {"blksize": str(granted)}


def test_negotiate_blksize_limit_is_configurable():
    assert negotiate({"blksize": "65464"}, 0, Limits(max_blksize=65464)).blksize == 65464


@pytest.mark.parametrize(
    "options",
    [
        {"blksize": "7"},
        {"blksize": "0"},
        {"blksize": "65465"},
        {"blksize": "abc"},
        {"blksize": "-512"},
        {"blksize": ""},
        {"windowsize": "0"},
        {"windowsize": "65536"},
        {"timeout": "0"},
        {"timeout": "256"},
        {"tsize": "x"},
    ],
)
def test_negotiate_refuses_bad_values_with_error_8(options):
    with pytest.raises(TftpError) as info:
        negotiate(options, 0, LIMITS)
    assert info.value.code == ERR_OPTIONS


def test_negotiate_windowsize_lowered_to_the_limit():
    result = negotiate({"windowsize": "65535"}, 0, LIMITS)
    assert result.windowsize == 64 and result.oack == {"windowsize": "64"}


@pytest.mark.parametrize(
    "name, expected",
    [
        ("pxelinux.0", "pxelinux.0"),
        ("/pxelinux.0", "pxelinux.0"),
        ("//boot//./grub/grub.cfg", "boot/grub/grub.cfg"),
        ("\\boot\\bootx64.efi", "boot/bootx64.efi"),
        ("pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", "pxelinux.cfg/01-aa-bb-cc-dd-ee-ff"),
        ("a..b", "a..b"),
    ],
)
def test_sanitize_path(name, expected):
    assert sanitize_path(name) == expected


@pytest.mark.parametrize(
    "name", ["..", "../etc/passwd", "/../../etc/passwd", "a/../../b", "a\\..\\..\\b", "/", "", ".", "a\0b"]
)
def test_sanitize_path_refuses_escapes(name):
    with pytest.raises(TftpError) as info:
        sanitize_path(name)
    assert info.value.code == ERR_ACCESS


@given(st.text())
def test_sanitized_paths_never_escape(name):
    try:
        path = sanitize_path(name)
    except TftpError:
        return
    assert not path.startswith("/")
    assert ".." not in path.split("/")
    assert "\0" not in path


def test_netascii():
    assert netascii_encode(b"a\nb\rc\r\n") == b"a\r\nb\r\0c\r\0\r\n"
    assert netascii_decode(netascii_encode(b"a\nb\rc\r\n")) == b"a\nb\rc\r\n"


@given(st.binary())
def test_netascii_round_trip(data):
    assert netascii_decode(netascii_encode(data)) == data


@pytest.mark.parametrize(
    "path, key",
    [
        ("pxelinux.cfg/01-AA-BB-CC-DD-EE-FF", ("mac", "aa:bb:cc:dd:ee:ff")),
        ("/bios/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", ("mac", "aa:bb:cc:dd:ee:ff")),
        ("bios/pxelinux.cfg/01-aa-bb-cc-dd-ee-ff", ("mac", "aa:bb:cc:dd:ee:ff")),
        ("grub/grub.cfg-aa:bb:cc:dd:ee:ff", ("mac", "aa:bb:cc:dd:ee:ff")),
        ("grub.cfg-01-02-03-04-05-06", ("mac", "01:02:03:04:05:06")),
        ("ipxe/aabbccddeeff.ipxe", ("mac", "aa:bb:cc:dd:ee:ff")),
        ("pxelinux.cfg/4C4C4544-0042-3510-8052-B4C04F384D31", ("uuid", "4c4c4544-0042-3510-8052-b4c04f384d31")),
        ("pxelinux.cfg/default", None),
        ("pxelinux.cfg/C0A8", None),
        ("grub/grub.cfg", None),
    ],
)
def test_machine_key(path, key):
    assert machine_key(path) == key


def test_normalise_mac_refuses_garbage():
    with pytest.raises(ValueError):
        normalise_mac("aa-bb")
