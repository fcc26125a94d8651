"""The hardware document of a node: what tag definitions (XPath) are evaluated over.

MAAS evaluates tag definitions over `lshw -xml` output. metalplane's ephemeral
image reports JSON facts instead (docs/boot.md), so the region builds an XML
document from them in lshw's vocabulary, so that the usual definitions work:
`//node[@class="processor"]`, `//node[@id="memory"]/size`, `//node[@class="disk"]`,
`//node[@class="network"]/configuration/setting[@id="driver"]/@value`.
docs/tags.md shows the whole document. Pure: facts in, bytes out.
"""

from __future__ import annotations

from typing import Any

from lxml import etree


def _text(parent: etree._Element, tag: str, value: Any, **attrs: str) -> None:
    if value is None or value == "":
        return
    child = etree.SubElement(parent, tag, **attrs)
    child.text = str(value)


def _settings(parent: etree._Element, values: dict[str, Any]) -> None:
    present = {k: v for k, v in values.items() if v not in (None, "")}
    if present:
        conf = etree.SubElement(parent, "configuration")
        for key, value in present.items():
            etree.SubElement(conf, "setting", id=key, value=str(value))


def _capabilities(parent: etree._Element, names: list[str]) -> None:
    if names:
        caps = etree.SubElement(parent, "capabilities")
        for name in names:
            etree.SubElement(caps, "capability", id=name)


def hardware_document(node: dict[str, Any]) -> etree._Element:
    """`node`: hostname, architecture, cpu_count, memory (MiB) and `hardware` (the facts)."""
    facts = node.get("hardware") or {}
    root = etree.Element("list")
    system = etree.SubElement(root, "node", id=node.get("hostname") or "machine", **{"class": "system"})
    _text(system, "description", "Computer")
    _settings(
        system,
        {
            "architecture": node.get("architecture"),
            "boot": node.get("boot_method"),
            "firmware": facts.get("firmware"),
            "kernel": facts.get("kernel"),
        },
    )
    core = etree.SubElement(system, "node", id="core", **{"class": "bus"})
    _text(core, "description", "Motherboard")
    memory = etree.SubElement(core, "node", id="memory", **{"class": "memory"})
    _text(memory, "description", "System Memory")
    _text(memory, "size", int(node.get("memory") or 0) * 1024 * 1024, units="bytes")
    count = int(node.get("cpu_count") or 0)
    for n in range(count):
        cpu = etree.SubElement(core, "node", id="cpu" if count == 1 else f"cpu:{n}", **{"class": "processor"})
        _text(cpu, "description", "CPU")
        _text(cpu, "product", facts.get("cpu_model"))
    for n, disk in enumerate(facts.get("disks") or []):
        element = etree.SubElement(core, "node", id="disk" if n == 0 else f"disk:{n}", **{"class": "disk"})
        _text(element, "description", "Disk")
        _text(element, "product", disk.get("model"))
        _text(element, "logicalname", f"/dev/{disk.get('name')}")
        _text(element, "serial", disk.get("serial"))
        _text(element, "size", disk.get("size_bytes"), units="bytes")
        _capabilities(element, [c for c in ("rotational", "removable") if disk.get(c)])
    for n, iface in enumerate(facts.get("interfaces") or []):
        element = etree.SubElement(core, "node", id="network" if n == 0 else f"network:{n}", **{"class": "network"})
        _text(element, "description", "Ethernet interface")
        _text(element, "logicalname", iface.get("name"))
        _text(element, "serial", iface.get("mac"))
        speed = iface.get("speed_mbps")
        if isinstance(speed, int) and speed > 0:
            _text(element, "size", speed * 1_000_000, units="bit/s")
        _settings(element, {"driver": iface.get("driver"), "link": "yes" if iface.get("link_up") else "no"})
    return root


def document_bytes(node: dict[str, Any]) -> bytes:
    return etree.tostring(hardware_document(node), xml_declaration=True, encoding="utf-8", pretty_print=True)


def compile_definition(definition: str) -> etree.XPath:
    """The XPath of a tag definition; etree.XPathSyntaxError when it is not one."""
    return etree.XPath(definition)


def evaluate(xpath: etree.XPath, document: etree._Element) -> bool:
    """MAAS's rule: a node has the tag when the expression's value is true
    (a non-empty node set, a true boolean, a non-zero number, a non-empty string)."""
    try:
        return bool(xpath(document))
    except etree.XPathEvalError:
        return False
