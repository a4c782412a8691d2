"""POSTs that a client may retry safely: the Idempotency-Key header (IETF httpapi draft), and answers that say
when a write's outcome is unknown.

With a key, the first request claims it (store/idempotency.py) with the request's fingerprint and the id the new
resource will have, then writes; its answer is recorded with the key. A retry with the same key and body gets the
recorded answer; if none was recorded (the first attempt ended in a 503, or the server stopped), the resource
written under the planned id is answered, or the operation runs again under that same id, so it is never created
twice. The same key with another body is a 422. Keys are scoped by client, method and path and expire after
TMF_IDEMPOTENCY_TTL seconds.
"""
from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from typing import Callable

import flask
from pymongo.errors import AutoReconnect, DuplicateKeyError, PyMongoError, ServerSelectionTimeoutError

from tmf_server.api.context import request_owner, services
from tmf_server.errors import ApiError, BadRequest, ServiceUnavailable, UnprocessableEntity
from tmf_server.store.idempotency import DONE

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces

Answer = tuple  # (body, status, headers), as handlers return
Perform = Callable[[str], Answer]  # the operation, given the id its new resource gets
Recover = Callable[[str], "Answer | None"]  # the answer for a resource already stored under that id, if any


def once(body, perform: Perform, recover: Recover | None = None, what: Callable[[str], str] | None = None) -> Answer:
    """Runs `perform` at most once per Idempotency-Key; `what(id)` names the resource in an unknown-outcome answer."""
    header = flask.request.headers.get(HEADER)
    if header is None:
        return _outcome_known(perform, str(uuid.uuid4()), what)
    key = key_of(header)
    if key is None:
        raise BadRequest(f"{HEADER} must be 1 to 255 printable ASCII characters without spaces.",
                         code="invalidIdempotencyKey")
    keys = services().idempotency
    # Per client (with TMF_AUTH=jwt): one client's key never answers another's request.
    client = request_owner()[0] or "-"
    scope = f"{client} {flask.request.method} {flask.request.path} {key}"
    fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    record = keys.claim(scope, fingerprint, str(uuid.uuid4()))
    if record.fingerprint != fingerprint:
        raise UnprocessableEntity(f"The {HEADER} '{key}' was already used with another request body; use a new "
                                  f"key for another request.", code="idempotencyKeyReused")
    if record.state == DONE:
        return _replay(record.answer)
    answer = None
    if not record.claimed_here and recover is not None:
        answer = recover(record.resource_id)  # the earlier attempt wrote, but its answer was not recorded
    if answer is None:
        try:
            answer = _outcome_known(perform, record.resource_id, what)
        except DuplicateKeyError:
            answer = recover(record.resource_id) if recover is not None else None
            if answer is None:
                raise
        except ApiError as exc:
            if exc.status < 500:
                keys.release(scope)  # refused: nothing was written, a corrected request may use the key
            raise
    try:
        keys.complete(scope, _recorded(answer))
    except PyMongoError as exc:  # answered anyway: a retry finds the resource under the planned id
        log.warning("answer for %s not recorded: %s", scope, exc)
    return answer


def key_of(header: str) -> str | None:
    """The key an Idempotency-Key header names, or None if it is not a valid one (the served documents' `pattern`
    of the header states the same rule)."""
    key = header.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':  # the draft's structured-field string form
        key = key[1:-1]
    return key if _KEY.fullmatch(key) else None


def _outcome_known(perform: Perform, resource_id: str, what: Callable[[str], str] | None) -> Answer:
    """`perform`, with a 503 that says so when a write was sent and not answered (it may have been stored)."""
    try:
        return perform(resource_id)
    except ServerSelectionTimeoutError:
        raise  # nothing was sent: the plain 503
    except AutoReconnect as exc:
        log.warning("write outcome unknown: %s", exc)
        where = f" as {what(resource_id)}" if what else ""
        raise ServiceUnavailable(
            f"The database did not answer in time: the change may or may not have been stored{where}. Retry with "
            f"the same {HEADER} to get its outcome without repeating it"
            f"{', or read it to find out' if what else ''}.",
            code="writeOutcomeUnknown", headers={"Retry-After": str(services().settings.retry_after_seconds)},
        ) from None


def _recorded(answer: Answer) -> dict:
    body, status, *rest = answer
    headers = rest[0] if rest else {}
    # The body as JSON text: stored exactly (the embedded engine would turn some booleans into 0/1).
    return {"status": status, "body": json.dumps(body, separators=(",", ":")), "headers": dict(headers)}


def _replay(recorded: dict) -> Answer:
    return json.loads(recorded["body"]), recorded["status"], recorded["headers"]
