"""Domain errors become HTTP in one place: each kind's status and MAAS's body shape."""

from __future__ import annotations

import json

import pytest

from metalplane.region import errors
from metalplane.region.api.errors import STATUS, error_response, plain_text, status_of
from metalplane.region.errors import RegionError
from metalplane.region.services.power import PowerFailed

TEXT = "text/plain; charset=utf-8"


def every_kind(cls: type = RegionError) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | every_kind(sub)
    return found


@pytest.mark.parametrize(
    "exc, status, body",
    [
        (errors.NotFound("Machine"), 404, "No Machine matches the given query."),
        (
            errors.NotFound("VLAN", "VLAN tag (VID) out of range (0-4094; 0 for untagged.)"),
            404,
            "VLAN tag (VID) out of range (0-4094; 0 for untagged.)",
        ),
        (
            errors.Refused("This fabric is the default fabric, it cannot be deleted."),
            400,
            "This fabric is the default fabric, it cannot be deleted.",
        ),
        (
            errors.PermissionDenied("This method is reserved for admin users."),
            403,
            "This method is reserved for admin users.",
        ),
        (errors.Conflict("An import is already running"), 409, "An import is already running"),
    ],
)
def test_text_errors_answer_their_status_in_plain_text(exc, status, body):
    response = error_response(exc)
    assert response.status_code == status
    assert response.body.decode() == body and response.headers["content-type"] == TEXT
    assert "retry-after" not in response.headers and "www-authenticate" not in response.headers


def test_form_errors_answer_400_with_maas_json_per_field():
    exc = errors.Invalid({"cidr": ["Subnet with this Cidr already exists."], "vid": ["a", "b"]})
    response = error_response(exc)
    assert response.status_code == 400 and response.headers["content-type"] == "application/json; charset=utf-8"
    assert json.loads(response.body) == {"cidr": ["Subnet with this Cidr already exists."], "vid": ["a", "b"]}
    assert json.loads(error_response(errors.Invalid.field("name", "This field is required.")).body) == {
        "name": ["This field is required."]
    }


def test_a_body_over_the_limit_answers_413():
    response = error_response(errors.TooLarge("The request body is larger than this endpoint accepts (10 bytes)."))
    assert response.status_code == 413 and response.headers["content-type"] == TEXT


def test_unauthenticated_answers_401_naming_the_oauth_realm():
    response = error_response(errors.Unauthenticated("Authorization Error: Invalid signature"))
    assert response.status_code == 401 and response.body == b"Authorization Error: Invalid signature"
    assert response.headers["www-authenticate"] == 'OAuth realm="OAuth"'


def test_unavailable_answers_503_with_retry_after_unless_there_is_no_sensible_wait():
    response = error_response(errors.Unavailable("The database is unavailable; retry shortly."))
    assert response.status_code == 503 and response.headers["retry-after"] == "5"
    power = error_response(PowerFailed("BMC 10.0.0.5: connection refused"))
    assert power.status_code == 503 and "retry-after" not in power.headers  # MAAS's power errors
    assert power.body == b"BMC 10.0.0.5: connection refused"


def test_every_kind_of_error_has_a_status():
    for kind in every_kind():
        assert status_of(kind.__new__(kind)) in STATUS.values(), kind
    assert set(STATUS) == {
        v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, RegionError) and v is not RegionError
    }


def test_plain_text_front_ends_show_form_errors_as_json_text():
    assert plain_text(errors.Invalid.field("mac_addresses", "At least one.")) == '{"mac_addresses": ["At least one."]}'
    assert plain_text(errors.Refused("Machine m1 is not commissioning.")) == "Machine m1 is not commissioning."
    assert status_of(errors.Unauthenticated("Unknown or missing machine token.")) == 401
