"""Hub subscriptions: a callback and a TMF630 query over the events, checked and translated when subscribing."""
from __future__ import annotations

import uuid

from tmf_server.bodies import check_keys
from tmf_server.errors import BadRequest, NotFound
from tmf_server.events.builder import EVENT_TYPES
from tmf_server.events.callbacks import check_callback
from tmf_server.events.signing import signing_key
from tmf_server.query.catalog import AttributeCatalog
from tmf_server.query.filters import build_filter, resolve_term
from tmf_server.query.params import Term, split_query_string
from tmf_server.store.database import SUBSCRIPTIONS
from tmf_server.store.reader import CollectionReader

# Stored events keep the notification (the envelope clients subscribe to) under this key.
EVENT_ENVELOPE_ROOT = "notification"
# The client (token's client_id / azp, else sub) a subscription belongs to; absent without authentication.
OWNER = "_owner"


def _check_event_types(catalog: AttributeCatalog, term: Term) -> None:
    """An eventType this server never emits could never match: refused when subscribing, not silently never sent."""
    attribute, operator = resolve_term(catalog, term)
    if attribute.path != "eventType" or operator not in ("eq", "ne"):
        return
    unknown = [value for value in term.value.split(",") if value not in EVENT_TYPES]
    if unknown:
        raise BadRequest(f"eventType {', '.join(repr(v) for v in unknown)} is not an event this server emits; "
                         f"it emits {', '.join(EVENT_TYPES)}.")


def representation(document: dict) -> dict:
    """The EventSubscription clients see: never the secret or the translated filter."""
    subscription = {"id": document["_id"], "callback": document["callback"]}
    if document.get("query") is not None:
        subscription["query"] = document["query"]
    return subscription


# What the dispatcher reads of a subscription to send to it (or to cancel what it owes).
SENDING_FIELDS = {"callback": 1, "_secret": 1, "_active": 1, "_disabledReason": 1}


class SubscriptionRepository:
    """The only code that reads and writes the hubSubscription collection: the hub API through
    SubscriptionService, the fan-out and the dispatcher (active filters, callbacks, disabling) and the gauges."""

    def __init__(self, db):
        self.collection = db[SUBSCRIPTIONS]
        self.reader = CollectionReader(db, SUBSCRIPTIONS)  # get, find and count, as for the TMF656 lists

    def insert(self, document: dict) -> None:
        self.collection.insert_one(document)

    def get(self, subscription_id: str) -> dict | None:
        return self.reader.get(subscription_id)

    def delete(self, query: dict) -> bool:
        """Removes the one subscription `query` matches (its id and visibility): whether there was one."""
        return self.collection.delete_one(query).deleted_count == 1

    def active(self) -> list[dict]:
        """The active subscriptions, with their filters and what sending to them needs."""
        return list(self.collection.find({"_active": {"$eq": True}}, {"_filter": 1, **SENDING_FIELDS}))

    def count_active(self) -> int:
        return self.reader.count({"_active": True})

    def counts(self) -> tuple[int, int]:
        """(active subscriptions, disabled ones)."""
        total, active = self.reader.count({}), self.count_active()
        return active, total - active

    def get_many(self, subscription_ids: list[str]) -> dict[str, dict]:
        return {s["_id"]: s for s in self.collection.find({"_id": {"$in": list(set(subscription_ids))}},
                                                          SENDING_FIELDS)}

    def disable(self, subscription_id: str, reason: str, stamp: str) -> bool:
        """Stops a subscription (`_active: false`) with the reason and time."""
        return self.collection.update_one(
            {"_id": subscription_id, "_active": True},
            {"$set": {"_active": False, "_disabledReason": reason, "_disabledAt": stamp}}).modified_count == 1


class SubscriptionService:
    def __init__(self, repository: SubscriptionRepository, event_catalog: AttributeCatalog,
                 callback_allow: tuple[str, ...], clock):
        self.repository = repository
        self.reader = repository.reader  # the hub's list reads through the same owner
        self.event_catalog = event_catalog
        self.callback_allow = callback_allow
        self.clock = clock

    def translate(self, query: str | None) -> dict:
        """The MongoDB filter over stored events for a TMF630 query such as `eventType=...&event.serviceProblem.priority<=2`."""
        if not query or not query.strip():
            return {}
        text = query.strip().lstrip("?")
        try:
            terms = split_query_string(text)
            for term in terms:
                _check_event_types(self.event_catalog, term)
            return build_filter(self.event_catalog, terms)
        except BadRequest as exc:
            raise BadRequest(f"query: {exc.message}", code="invalidQuery") from None

    @staticmethod
    def visible_to(owner: str | None, everyone: bool) -> dict:
        """The filter of the subscriptions a client may see: its own, or all for an admin (or without auth)."""
        return {} if everyone else {OWNER: owner}

    def subscribe(self, body: dict, owner: str | None = None, subscription_id: str | None = None) -> dict:
        callback = body["callback"].strip()
        check_callback(callback, self.callback_allow)  # first: its message names what is wrong with the URL
        check_keys(body)  # operator and dotted names, lone surrogates, NUL: 400 as in every other body
        query = body.get("query")
        secret = body.get("secret") or None
        if secret is not None:
            try:
                signing_key(secret)
            except ValueError as exc:
                raise BadRequest(f"secret: {exc}.", code="invalidSecret") from None
        document = {
            "_id": subscription_id or str(uuid.uuid4()),
            "callback": callback,
            "query": query,
            "_filter": self.translate(query),
            "_secret": secret,
            "_active": True,
            "createdAt": self.clock(),
        }
        if owner is not None:
            document[OWNER] = owner
        self.repository.insert(document)
        return representation(document)

    def get(self, subscription_id: str, owner: str | None = None, everyone: bool = True) -> dict:
        """Another client's subscription is a 404, as if it did not exist (its id tells nothing then)."""
        document = self.repository.get(subscription_id)
        if document is None or (not everyone and document.get(OWNER) != owner):
            raise NotFound(f"No hub subscription with id '{subscription_id}'.")
        return representation(document)

    def unsubscribe(self, subscription_id: str, owner: str | None = None, everyone: bool = True) -> None:
        query = {"_id": subscription_id, **self.visible_to(owner, everyone)}
        if not self.repository.delete(query):
            raise NotFound(f"No hub subscription with id '{subscription_id}'.")
