"""Property-based tests of the API from its own OpenAPI document (schemathesis): generated
requests to every operation, each sent with the token of one role in turn (so nearly all get
past authentication), never answer 5xx, and every error is a problem+json body."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tests.web.support import USERS, Api, make_api
from dispatch.web.guard import Limits

ROLES = list(USERS)
SEEN: Counter[str] = Counter()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(Path(tmp_path_factory.mktemp("fuzz")),
                   limits=Limits(writes_per_minute=100_000, write_burst=100_000, signins_per_minute=100_000))
    with api.client:
        ticket = api.report("sup-a")
        api.step("disp-a", ticket, "accept")
        api.step("disp-a", ticket, "dispatch")
        yield api
    api.runtime.close()


def _send(web: Api, case: Any) -> None:
    role = ROLES[sum(SEEN.values()) % len(ROLES)]
    headers = {**(case.headers or {}), "Authorization": f"Bearer {web.tokens[role]}"}
    response = case.call(headers=headers)
    SEEN["past authentication" if response.status_code != 401 else "refused"] += 1
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if response.status_code >= 400:
        kind = response.headers["content-type"]
        kind = kind[0] if isinstance(kind, list) else kind
        if case.path.startswith("/open311/"):  # the spec's own error shape, in the format asked for
            assert kind.split(";")[0] in ("application/json", "text/xml"), response.text
            if kind == "application/json":
                assert list(response.json()[0]) == ["code", "description"], response.text
        else:
            assert kind == "application/problem+json", response.text
        assert "Traceback" not in response.text and "Error(" not in response.text


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_input_makes_a_server_error(web: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 25  # every step and every read
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def run(case: Any) -> None:
            _send(web, case)

        try:
            run()
        except Unsatisfiable:  # nothing to make invalid (no parameters, no body): nothing to send
            assert mode is GenerationMode.NEGATIVE


def test_most_generated_requests_got_past_authentication() -> None:
    """Runs after the fuzz tests above (pytest keeps file order)."""
    total = SEEN["past authentication"] + SEEN["refused"]
    assert total > 100
    assert SEEN["past authentication"] >= total / 2, SEEN
