"""The API against its own OpenAPI document (schemathesis): every operation, fed generated
valid and invalid requests with an admin's and a department's token, answers only statuses,
content types and bodies its document promises and never a server error; stateful runs follow
the document's links from a report to its steps; a client that knows only the document's
examples walks a ticket through its whole lifecycle."""

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
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from dispatch.web.guard import Limits
from tests.said import say
from tests.web.support import Api, make_api

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
TOKENS = ("boss", "desk-cg")  # an admin, and a department desk
RAN: Counter[str] = Counter()


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    api = make_api(Path(tmp_path_factory.mktemp("openapi")),
                   limits=Limits(writes_per_minute=100_000, write_burst=100_000, signins_per_minute=100_000))
    with api.client:
        ticket = api.report("sup-a")
        api.step("disp-a", ticket, "accept")
        api.step("disp-a", ticket, "dispatch")
        yield api
    api.runtime.close()


def _failures(error: BaseException) -> str:
    return str(error).strip().splitlines()[0:12].__str__()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_answers_as_its_document_says(web: Api, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/api/openapi.json", web.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 45
    failed: list[str] = []
    for operation in operations:
        for who in TOKENS:
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                      database=None)
            def run(case: Any) -> None:
                response = case.call(headers={**(case.headers or {}), "Authorization": f"Bearer {web.tokens[who]}"})
                RAN["requests"] += 1
                RAN["past authentication"] += response.status_code != 401
                try:
                    case.validate_response(response, checks=CHECKS)
                except BaseException as error:  # a FailureGroup: collected, so every operation is tried
                    failed.append(f"{operation.label} as {who}: {response.status_code} {_failures(error)}")

            try:
                run()
            except Unsatisfiable:  # nothing to make invalid (no parameters, no body): nothing to send
                assert mode is GenerationMode.NEGATIVE
        RAN["operations"] += mode is GenerationMode.POSITIVE
    say(f"schemathesis, {mode.value}: {len(operations)} operations, {RAN['requests']} requests in all so far, "
        f"{len(failed)} failures")
    assert failed == []


def test_most_generated_requests_got_past_authentication() -> None:
    """Runs after the tests above (pytest keeps file order): the fuzzing reached the handlers."""
    assert RAN["operations"] >= 45 and RAN["requests"] > 1000, RAN
    assert RAN["past authentication"] >= RAN["requests"] * 0.8, RAN  # /api/session is fed wrong passwords


def test_each_step_on_a_real_ticket_answers_as_documented(tmp_path: Path) -> None:
    """Stateful where it can be: for every operation on a ticket, a ticket made from the
    document's examples (reported, accepted, dispatched), then generated requests to that
    operation *on it* — so steps get past "no such ticket" to the lifecycle's own answers."""
    web = make_api(tmp_path, limits=Limits(writes_per_minute=100_000, write_burst=100_000,
                                           signins_per_minute=100_000))
    with web.client:
        schema = schemathesis.openapi.from_asgi("/api/openapi.json", web.client.app)
        doc = web.client.get("/api/openapi.json").json()
        report = doc["components"]["schemas"]["ReportBody"]["example"]
        operations = [result.ok() for result in schema.get_all_operations()]
        on_ticket = [op for op in operations if op.path.startswith("/api/tickets/{ticket}")]
        assert len(on_ticket) >= 20
        seen: Counter[str] = Counter()
        failed: list[str] = []
        for operation in on_ticket:
            made = web.post("boss", "/api/tickets", report)
            assert made.status_code == 201, made.text
            ticket = made.json()["ticket_id"]
            web.step("boss", ticket, "accept")
            web.step("boss", ticket, "dispatch")
            current = [ticket]

            @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
            @settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                      database=None)
            def run(case: Any) -> None:
                case.path_parameters = {**(case.path_parameters or {}), "ticket": current[0]}
                response = case.call(headers={**(case.headers or {}), "Authorization": f"Bearer {web.tokens['boss']}"})
                seen["requests"] += 1
                seen[str(response.status_code)[0] + "xx"] += 1
                try:
                    case.validate_response(response, checks=CHECKS)
                except BaseException as error:  # collected, so every operation is tried
                    failed.append(f"{operation.label}: {response.status_code} {_failures(error)}")

            run()
    web.runtime.close()
    say(f"schemathesis, on real tickets: {len(on_ticket)} operations, {seen['requests']} requests, "
        f"{seen['2xx']} answered 2xx, {seen['4xx']} refused as documented, {len(failed)} failures")
    assert failed == []
    assert seen["2xx"] >= len(on_ticket) // 2 and seen["5xx"] == 0, seen


def test_the_examples_walk_a_ticket_through_its_whole_lifecycle(web: Api) -> None:
    """What a client generated from the document knows: the examples. As an admin, one after
    another, they take a report to its close."""
    doc = web.client.get("/api/openapi.json").json()
    schemas = doc["components"]["schemas"]

    def example(path: str) -> dict[str, Any]:
        ref = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return dict(schemas[ref.rsplit("/", 1)[1]]["example"])

    made = web.post("boss", "/api/tickets", example("/api/tickets"))
    assert made.status_code == 201, made.text
    ticket = made.json()["ticket_id"]
    for step in ("accept", "dispatch", "acknowledge", "handle", "feedback", "evaluate", "close"):
        answer = web.post("boss", f"/api/tickets/{ticket}/{step}", example(f"/api/tickets/{{ticket}}/{step}"))
        assert answer.status_code == 200, (step, answer.text)
    assert web.get("boss", f"/api/tickets/{ticket}").json()["status"] == "closed"


def test_the_document_says_what_errors_look_like(web: Api) -> None:
    doc = web.client.get("/api/openapi.json").json()
    step = doc["paths"]["/api/tickets/{ticket}/acknowledge"]["post"]["responses"]
    assert {"200", "202", "400", "401", "403", "404", "409", "413", "415", "422", "429", "503"} <= set(step)
    assert list(step["422"]["content"]) == ["application/problem+json"]
    assert list(doc["paths"]["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    answer = web.post("desk-cg", "/api/tickets/nothing/acknowledge", {"department": 5})
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"
