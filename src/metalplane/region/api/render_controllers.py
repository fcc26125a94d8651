"""The controller keys MAAS declares that metalplane does not track, with MAAS's
neutral values (maas_field_values.json): no hardware facts, no test results."""

from __future__ import annotations

from typing import Any

UNKNOWN_STATUS = -1  # no script results of that kind
TEST_KINDS = (
    "commissioning",
    "testing",
    "cpu_test",
    "memory_test",
    "network_test",
    "storage_test",
    "other_test",
    "interface_test",
)
HARDWARE_INFO_KEYS = (
    "system_vendor",
    "system_product",
    "system_family",
    "system_version",
    "system_sku",
    "system_serial",
    "cpu_model",
    "mainboard_vendor",
    "mainboard_product",
    "mainboard_serial",
    "mainboard_version",
    "mainboard_firmware_vendor",
    "mainboard_firmware_date",
    "mainboard_firmware_version",
    "chassis_vendor",
    "chassis_type",
    "chassis_serial",
    "chassis_version",
)


def controller_neutral() -> dict[str, Any]:
    """A fresh dict each time: callers add to the nested values."""
    out: dict[str, Any] = {
        "hardware_uuid": None,
        "cpu_speed": 0,
        "current_commissioning_result_id": None,
        "current_testing_result_id": None,
        "current_installation_result_id": None,
        "hardware_info": dict.fromkeys(HARDWARE_INFO_KEYS, "Unknown"),
    }
    for kind in TEST_KINDS:
        out[f"{kind}_status"] = UNKNOWN_STATUS
        out[f"{kind}_status_name"] = "Unknown"
    return out
