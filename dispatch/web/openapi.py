"""The OpenAPI document, telling the truth: FastAPI's own, completed with what it cannot know.

- every operation lists each status it can answer, each error as ``application/problem+json``
  (one shared ``Problem`` schema; 422 included, as it is really sent) — Open311's in the spec's
  own shape, JSON or XML;
- ``/metrics`` is Prometheus text, ``/readyz`` may say 503, Open311's formats are ``json``/``xml``
  and its ``POST requests`` is the form it is;
- request bodies carry examples that name this deployment's own grid, category and departments
  (from its reference data), so a generated client can walk a ticket through its whole
  lifecycle; the report's answer links to each step (OpenAPI links) for stateful clients.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["install"]

PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status", "detail", "code"],
    "properties": {"type": {"type": "string", "description": "urn:dispatch:error:<code>"},
                   "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string", "description": "one sentence; in Chinese on Accept-Language: zh"},
                   "code": {"type": "string", "description": "the stable code of docs/errors.md"},
                   "instance": {"type": "string"},
                   "ticket_id": {"type": "string", "description": "already_reported: the ticket it is"}},
}
OPEN311_ERRORS = {"type": "array", "items": {"type": "object", "required": ["code", "description"],
                                             "properties": {"code": {"type": "integer"},
                                                            "description": {"type": "string"}}}}
WHY = {400: "the body is not JSON, or not what the door reads", 401: "no valid token (or the sign-in was refused)",
       403: "this role or scope may not do that", 404: "no such ticket (or one you may not see), command or path",
       409: "the ticket's state refuses the step, or the command was seen before",
       413: "the body is too large", 415: "send application/json", 422: "a field is missing, mistyped or unknown",
       429: "too many requests: Retry-After says when to try again", 503: "the database or broker cannot be reached"}

_READS = {401, 403, 404, 422, 429, 503}
_WRITES = {400, 401, 403, 404, 409, 413, 415, 422, 429, 503}


def _statuses(path: str, method: str) -> set[int]:
    if path == "/api/session":
        return {400, 401, 413, 415, 422, 429, 503}
    if path == "/api/me":
        return {401, 429, 503}
    if path.startswith("/api/reference/"):
        return {401, 403, 422, 429, 503}
    if path.startswith("/api/notify/"):
        return {401, 403, 404, 422, 429, 503} | ({400, 413, 415} if method != "get" else set())
    if path.startswith("/api/"):
        return _WRITES if method == "post" else _READS
    if path.startswith("/open311/"):
        return {400, 403, 404, 409, 413, 429, 503}
    if path == "/readyz":
        return {503}
    return set()


def _examples(runtime: Any) -> dict[str, dict[str, Any]]:
    """One example body per operation body, with this deployment's names."""
    ref = runtime.reference
    category = next((k for k in ref.categories.values() if k.lead_department in ref.departments),
                    next(iter(ref.categories.values()), None))
    grid = next(iter(ref.grids), "grid-id")
    lead = category.lead_department if category is not None else next(iter(ref.departments), "department-id")
    others = [d for d in (category.cooperating if category is not None else ()) if d != lead][:1]
    return {
        "ReportBody": {"grid": grid, "category": category.id if category else "category-id", "priority": "normal",
                       "description": "垃圾堆放在路口", "location": "路口东侧"},
        "AcceptBody": {"note": "受理"},
        "FirstContactBody": {"mode": "on_the_spot", "note": "当场解答"},
        "DispatchBody": {"lead": lead, "cooperating": others},
        "AcknowledgeBody": {"department": lead},
        "RejectBody": {"department": lead, "reason": "不属于本部门职责"},
        "HandleBody": {"department": lead, "result": "已清理完毕"},
        "FeedbackBody": {"message": "已处理，请查看"},
        "EvaluateBody": {"satisfaction": "satisfied", "resolved": True},
        "CloseBody": {"note": "办结"},
        "ReopenBody": {"reason": "群众反映仍未处理"},
        "EscalateBody": {"reason": "超时督办"},
        "DuplicateBody": {"original_id": "00000000-0000-0000-0000-000000000000"},
        "CancelBody": {"reason": "误报"},
        "ExtensionBody": {"department": lead, "minutes": 120, "reason": "需要调配设备"},
        "ExtensionDecisionBody": {"approve": True},
        "HoldBody": {"reason": "等待业主配合"},
        "ResumeBody": {"note": "业主已配合"},
        "SignIn": {"name": "admin", "password": "correct horse battery"},
        "ChannelBody": {"owner": f"department:{lead}", "kind": "wecom",
                        "target": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…", "label": "值班群"},
        "Resend": {},
        "Erase": {"phone": "13812345678"},
    }


def _open311_form(runtime: Any) -> dict[str, Any]:
    ref = runtime.reference
    text = {"type": "string", "maxLength": 4000}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {"type": "object", "required": ["api_key", "service_code"], "properties": {
            "api_key": {"type": "string", "maxLength": 200}, "service_code": {"type": "string", "maxLength": 200},
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "crs": {"type": "string", "enum": ["WGS84", "GCJ02"]}, "address_string": text,
            "address_id": {"type": "string", "maxLength": 200}, "description": text,
            "first_name": {"type": "string", "maxLength": 50}, "last_name": {"type": "string", "maxLength": 50},
            "phone": {"type": "string", "maxLength": 30}, "email": {"type": "string", "maxLength": 200},
            "media_url": {"type": "string", "maxLength": 500}}},
        "example": {"api_key": "dsp_…", "service_code": next(iter(ref.categories), "category-id"),
                    "address_id": next(iter(ref.grids), "grid-id"), "description": "垃圾堆放"}}}}


_STEP_LINKS = ("accept", "first-contact", "dispatch", "acknowledge", "reject", "handle", "feedback", "evaluate",
               "reopen", "escalate", "duplicate", "cancel", "close", "extension", "extension-decision", "hold",
               "resume")


def document(app: FastAPI, runtime: Any) -> dict[str, Any]:
    doc = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = doc.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["Open311Errors"] = OPEN311_ERRORS
    for name, example in _examples(runtime).items():
        if name in schemas:
            schemas[name]["example"] = example
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    open311 = {"application/json": {"schema": {"$ref": "#/components/schemas/Open311Errors"}},
               "text/xml": {"schema": {"type": "string"}}}
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            is_open311 = path.startswith("/open311/")
            for status in sorted(_statuses(path, method)):
                responses[str(status)] = {"description": WHY.get(status, "error"),
                                          "content": open311 if is_open311 else problem}
            if not _statuses(path, method) & {422}:
                responses.pop("422", None)
            if is_open311:
                for status, answer in responses.items():
                    if status.startswith("2"):
                        answer["content"] = {"application/json": {"schema": {}},
                                             "text/xml": {"schema": {"type": "string"}}}
                for parameter in operation.get("parameters", []):
                    if parameter["name"] == "fmt":
                        parameter["schema"] = {"type": "string", "enum": ["json", "xml"]}
                if method == "post":
                    operation["requestBody"] = _open311_form(runtime)
                    responses.pop("200", None)
                    responses["201"] = {"description": "the request id, or a token to look it up by",
                                        "content": {"application/json": {"schema": {}},
                                                    "text/xml": {"schema": {"type": "string"}}}}
    doc["paths"]["/metrics"]["get"]["responses"]["200"] = {
        "description": "Prometheus text exposition", "content": {"text/plain": {"schema": {"type": "string"}}}}
    for path in ("/healthz", "/readyz"):
        doc["paths"][path]["get"]["responses"]["200"]["content"] = {
            "application/json": {"schema": {"type": "object"}}}
    report = doc["paths"]["/api/tickets"]["post"]["responses"]
    report["200"] = {"description": "the same report again (its idempotency key or outside reference): "
                                    "what it did the first time",
                     "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Applied"}}}}
    report["201"]["links"] = {
        step.replace("-", "_"): {"operationId": doc["paths"][f"/api/tickets/{{ticket}}/{step}"]["post"]["operationId"],
                                 "parameters": {"ticket": "$response.body#/ticket_id"}}
        for step in _STEP_LINKS} | {
        "show": {"operationId": doc["paths"]["/api/tickets/{ticket}"]["get"]["operationId"],
                 "parameters": {"ticket": "$response.body#/ticket_id"}}}
    return doc


def install(app: FastAPI, runtime: Any) -> None:
    """``app.openapi`` answers the completed document (made once)."""
    made: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        if not made:
            made.update(document(app, runtime))
        return made

    app.openapi = openapi  # type: ignore[method-assign]
