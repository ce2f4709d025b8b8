"""Prometheus metrics and the OpenAPI document of a running system."""

from __future__ import annotations

import re

import pytest
from rtkit import AUTH, KEY, demo, held, metric, running, wait_until

JSON = {**AUTH, "content-type": "application/json"}


def test_every_metric_carries_the_system_prefix_and_each_component_has_its_gauges(data):
    with running(demo("shop")) as client:
        text = client.get("/metrics").text
    names = {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][\w:]*)[{ ]", text, re.M)}
    assert names and all(name.startswith("shop_") for name in names), names
    for component in ("api", "work", "items", "bigs"):
        for gauge in ("shop_queue_depth", "shop_in_flight", "shop_circuit_state", "shop_consumers_up"):
            assert metric(text, gauge, component=component) is not None, (gauge, component)
        assert metric(text, "shop_messages_received_total", component=component) == 0
    assert metric(text, "shop_inbox_backlog") == 0


def test_gauges_show_a_message_in_flight(data):
    with running(demo()) as client:
        assert client.post("/items", json={"id": "slow", "act": "sleep:1"}, headers=AUTH).status_code == 202
        wait_until(lambda: metric(client.get("/metrics").text, "demo_in_flight", component="work") == 1)
        text = client.get("/metrics").text
        assert metric(text, "demo_inbox_backlog") == 1
        assert metric(text, "demo_messages_received_total", component="api") == 1
        wait_until(lambda: metric(client.get("/metrics").text, "demo_in_flight", component="work") == 0)
        wait_until(lambda: metric(client.get("/metrics").text, "demo_inbox_backlog") == 0)
        text = client.get("/metrics").text
        assert metric(text, "demo_messages_received_total", component="work") == 1
        assert metric(text, "demo_messages_emitted_total", component="work") == 1
        assert metric(text, "demo_processing_seconds_count", component="work") == 1
        assert metric(text, "demo_processing_seconds_sum", component="work") >= 1.0


def test_each_refused_request_is_counted_once_by_status(data, monkeypatch):
    monkeypatch.setenv("INBOX_LIMIT", "1")
    system = demo(api={"max_body_bytes": 200})
    bucket = system.components["api"].bucket
    bucket.rate, bucket.burst, bucket.tokens = 0.001, 3.0, 3.0
    with running(system) as client, held():
        statuses = [
            client.post("/items", json={"id": "a"}).status_code,  # 401: no key
            client.post("/items", content=b"{" + b" " * 300 + b"}", headers=JSON).status_code,  # 413
            client.post("/items", json={"id": "A B"}, headers=AUTH).status_code,  # 422 (token 1)
            client.post("/items", json={"id": "a", "act": "hold"}, headers=AUTH).status_code,  # 202 (2)
            client.post("/items", json={"id": "b"}, headers=AUTH).status_code,  # 503 saturated (3)
            client.post("/items", json={"id": "c"}, headers=AUTH).status_code,  # 429: no token
        ]
        assert statuses == [401, 413, 422, 202, 503, 429]
        text = client.get("/metrics").text
        for status in ("401", "413", "422", "202", "503", "429"):
            assert metric(text, "demo_http_responses_total", route="/items", status=status) == 1, status
        assert metric(text, "demo_http_responses_total", route="/items", status="500") is None
        assert metric(text, "demo_messages_received_total", component="api") == 1  # only the 202
        client.get("/dead-letters")
        assert (
            metric(
                client.get("/metrics").text, "demo_http_responses_total", route="/dead-letters", status="401"
            )
            == 1
        )


@pytest.mark.parametrize("metrics_auth", [True, False])
def test_metrics_auth_puts_metrics_and_openapi_behind_the_key(data, metrics_auth):
    with running(demo(metrics_auth=metrics_auth)) as client:
        for path in ("/metrics", "/openapi.json"):
            anonymous = client.get(path)
            assert anonymous.status_code == (401 if metrics_auth else 200), path
            assert client.get(path, headers={"X-API-Key": "wrong"}).status_code == (
                401 if metrics_auth else 200
            )
            assert client.get(path, headers=AUTH).status_code == 200
        assert client.get("/healthz").status_code == 200 and client.get("/readyz").status_code == 200
        protected = client.get("/openapi.json", headers=AUTH).json()["paths"]["/metrics"]["get"]
        assert ("security" in protected) is metrics_auth


def resolve(document: dict, node):
    """Every $ref in `node` must point at something in the document."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if ref is not None:
            target = document
            for part in ref.removeprefix("#/").split("/"):
                assert part in target, f"dangling {ref}"
                target = target[part]
        for value in node.values():
            resolve(document, value)
    elif isinstance(node, list):
        for value in node:
            resolve(document, value)


def test_openapi_declares_security_and_response_schemas(data):
    with running(demo(metrics_auth=True)) as client:
        document = client.get("/openapi.json", headers={"X-API-Key": KEY}).json()
    assert document["openapi"] == "3.1.0" and document["info"]["title"] == "demo"
    scheme = document["components"]["securitySchemes"]["apiKey"]
    assert scheme == {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    protected = {
        ("/items", "post"),
        ("/items", "get"),
        ("/items/{key}", "get"),
        ("/bigs", "get"),
        ("/bigs/{key}", "get"),
        ("/dead-letters", "get"),
        ("/metrics", "get"),
    }
    operations = {(path, method): op for path, ops in document["paths"].items() for method, op in ops.items()}
    assert protected | {("/healthz", "get"), ("/readyz", "get")} == set(operations)
    for key, operation in operations.items():
        if key in protected:
            assert operation["security"] == [{"apiKey": []}], key
            assert "401" in operation["responses"], key
        else:
            assert "security" not in operation, key
        for status, response in operation["responses"].items():
            assert response["description"], (key, status)
            (media,) = response["content"].values()
            assert media["schema"], (key, status)
    ingress = operations[("/items", "post")]
    body = ingress["requestBody"]["content"]["application/json"]["schema"]
    assert set(body["properties"]) == {"id", "n", "ts", "act"} and body["required"] == ["id"]
    assert body["additionalProperties"] is False
    assert {"202", "401", "413", "415", "422", "429", "503"} <= set(ingress["responses"])
    assert "404" in operations[("/items/{key}", "get")]["responses"]
    resolve(document, document)


def test_openapi_without_a_read_key_has_no_security_on_reads(data):
    with running(demo(read_key_env=None)) as client:
        document = client.get("/openapi.json").json()
        assert client.get("/dead-letters").status_code == 200
    assert "security" not in document["paths"]["/dead-letters"]["get"]
    assert "security" in document["paths"]["/items"]["post"]  # the ingress keeps its own key
