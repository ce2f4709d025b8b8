"""/metrics?name[]=: only the samples asked for, as prometheus_client's own exposition filters
(the path tests poll one counter of systems of hundreds of components)."""

from __future__ import annotations

import re

from rtkit import AUTH, demo, metric, running, wait_until


def names(text: str) -> set[str]:
    return {m.group(1) for m in re.finditer(r"^([a-zA-Z_:][\w:]*)[{ ]", text, re.M)}


def test_metrics_filtered_by_name_give_exactly_those_samples_with_the_same_values(data):
    with running(demo("shop")) as client:
        assert client.post("/items", json={"id": "a"}, headers=AUTH).status_code == 202
        wait_until(lambda: metric(client.get("/metrics").text, "shop_inbox_backlog") == 0)
        whole = client.get("/metrics").text
        asked = ["shop_messages_received_total", "shop_inbox_backlog"]
        answer = client.get("/metrics", params={"name[]": asked})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/plain")
    assert names(answer.text) == set(asked)
    assert len(names(whole)) > len(asked)
    samples = [line for line in answer.text.splitlines() if not line.startswith("#")]
    assert samples and all(line in whole.splitlines() for line in samples)
    assert metric(answer.text, "shop_messages_received_total", component="api") == 1


def test_a_name_the_system_does_not_have_gives_no_sample(data):
    with running(demo("shop")) as client:
        answer = client.get("/metrics", params={"name[]": ["nothing_total"]})
    assert answer.status_code == 200 and names(answer.text) == set()
