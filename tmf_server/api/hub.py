"""/hub operations: register, list, read and unregister event subscriptions."""
from __future__ import annotations

import flask

from tmf_server.api.context import api_base_url, request_owner, services
from tmf_server.api.idempotency import once
from tmf_server.api.lists import list_response
from tmf_server.errors import NotFound
from tmf_server.events.subscriptions import representation

COLLECTION = "/hub"


def registerListener(body):
    subscriptions, base, owner = services().subscriptions, api_base_url() + COLLECTION, request_owner()[0]

    def registered(subscription: dict) -> tuple:
        return subscription, 201, {"Location": f"{base}/{subscription['id']}"}

    def stored_under(subscription_id: str):
        try:
            return registered(subscriptions.get(subscription_id, *request_owner()))
        except NotFound:
            return None

    return once(body, lambda subscription_id: registered(subscriptions.subscribe(body, owner, subscription_id)),
                recover=stored_under, what=lambda subscription_id: f"{base}/{subscription_id}")


def listListeners(offset=None, limit=None):
    app = services()
    return list_response(app.subscriptions.reader, app.subscription_catalog, COLLECTION, fields=None, offset=offset,
                         limit=limit, sort=None, default_sort=(("createdAt", 1), ("_id", 1)), present=representation,
                         scope=app.subscriptions.visible_to(*request_owner()))


def retrieveListener(id):  # noqa: A002
    return services().subscriptions.get(id, *request_owner())


def unregisterListener(id):  # noqa: A002
    services().subscriptions.unsubscribe(id, *request_owner())
    response = flask.Response(status=204)
    del response.headers["Content-Type"]
    return response
