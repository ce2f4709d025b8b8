"""JUnit reports compared across runs (the test tier's batching, warm worker and collection
tests): what pytest writes without what differs between any two runs of the same tests."""

from __future__ import annotations

import xml.etree.ElementTree as ET


def normalized_junit(junit: bytes) -> bytes:
    """A JUnit report without its times, timestamp and host."""
    root = ET.fromstring(junit)  # noqa: S314 - our own pytest's output
    for node in root.iter():
        for key in ("time", "timestamp", "hostname"):
            node.attrib.pop(key, None)
    return ET.tostring(root)
