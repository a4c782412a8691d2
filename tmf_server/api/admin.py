"""/admin/delivery operations (openapi/admin.yaml): list and read deliveries, redrive parked ones, send retrying
ones now."""
from __future__ import annotations

import time

import flask

from tmf_server.api.context import raw_query_string, services
from tmf_server.api.paging import page_headers
from tmf_server.errors import Conflict, NotFound
from tmf_server.events.deliveries import DeliveryStore, representation
from tmf_server.query.listing import page_limit


def _store() -> DeliveryStore:
    return services().deliveries


def _now_ms() -> int:
    return int(time.time() * 1000)


def list_deliveries(state=None, subscriptionId=None, eventId=None, problemId=None, offset=0, limit=None):
    settings = services().settings
    limit = page_limit(limit, settings.default_limit, settings.max_limit)
    query = {key: value for key, value in (("state", state), ("subscriptionId", subscriptionId),
                                           ("eventId", eventId), ("problemId", problemId)) if value is not None}
    store = _store()
    items = [representation(d) for d in store.find(query, offset, limit)]
    status, headers = page_headers(flask.request.base_url, raw_query_string(), offset, limit, len(items),
                                   store.count(query))
    return items, status, headers


def get_delivery(id):
    found = _store().get(id)
    if found is None:
        raise NotFound(f"No delivery with id '{id}'.")
    return representation(found)


def _refuse(store, id, rule: str, code: str):
    """Why a delivery was not changed: it does not exist (404), or its state does not allow it (409)."""
    found = store.get(id)
    if found is None:
        raise NotFound(f"No delivery with id '{id}'.")
    raise Conflict(f"Delivery '{id}' is {found['state']}; {rule}", code=code)


def redrive_delivery(id):
    store = _store()
    redriven = store.redrive(id, _now_ms())
    if redriven is None:
        _refuse(store, id, "only a parked delivery can be redriven.", "deliveryNotParked")
    return representation(redriven)


def redrive_parked(subscriptionId):
    return {"subscriptionId": subscriptionId, "redriven": _store().redrive_parked(subscriptionId, _now_ms())}


def send_delivery_now(id):
    store = _store()
    due = store.send_now(id, _now_ms())
    if due is None:
        _refuse(store, id, "only a retrying delivery can be sent now (a parked one is redriven).",
                "deliveryNotRetrying")
    _end_rest(due["subscriptionId"])
    return representation(due)


def send_retrying_now(subscriptionId):
    due = _store().send_retrying_now(subscriptionId, _now_ms())
    if due:
        _end_rest(subscriptionId)
    return {"subscriptionId": subscriptionId, "due": due}


def _end_rest(subscription_id: str) -> None:
    """This process's dispatcher stops resting on the subscription's listener (docs/events.md, "Fairness");
    other dispatchers that do not rest on it claim the deliveries now due."""
    dispatcher = services().dispatcher
    if dispatcher is not None:
        dispatcher.end_rest(subscription_id)
