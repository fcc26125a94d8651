"""rpc.fields.parsed: the addresses and networks RPC payloads carry, as strings only."""

from __future__ import annotations

import ipaddress
from typing import Annotated

import pytest
from pydantic import TypeAdapter, ValidationError

from metalplane.rpc.fields import parsed

Address = TypeAdapter(Annotated[ipaddress.IPv4Address, parsed(ipaddress.IPv4Address, "an IPv4 address")])


def test_a_string_is_read_and_a_parsed_value_kept():
    assert Address.validate_python("10.0.0.1") == ipaddress.IPv4Address("10.0.0.1")
    same = ipaddress.IPv4Address("10.0.0.2")
    assert Address.validate_python(same) is same


@pytest.mark.parametrize("value", ["10.0.0", "fd00::1", 167772161, None, ["10.0.0.1"]])
def test_anything_else_is_refused_naming_what_was_expected(value):
    with pytest.raises(ValidationError) as refused:
        Address.validate_python(value)
    assert f"expected an IPv4 address, got {value!r}" in str(refused.value)
