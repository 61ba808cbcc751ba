"""The Stripe connector: typed listing by created-time window, CRUD with idempotency keys, webhooks."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar
from urllib.parse import quote

from connectors.base import PaginationGuard, epoch_ceil, to_utc
from connectors.exceptions import ConnectorParseError, ConnectorValidationError
from connectors.integration import IntegrationConnector
from connectors.stripe.credentials import StripeCredentials
from connectors.stripe.models import (
    OBJECT_MODELS,
    Charge,
    Customer,
    Invoice,
    PaymentIntent,
    Refund,
    StripeEvent,
    StripeObject,
    Subscription,
)
from connectors.stripe.webhooks import DEFAULT_TOLERANCE, parse_event, verify_signature
from connectors.webhooks import SeenDeliveries

M = TypeVar("M", bound=StripeObject)


def encode_form(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten ``params`` into Stripe's form encoding: ``metadata[foo]=bar``, lists as ``items[0][price]``.

    None values are left out (send ``""`` to unset a field), booleans become ``true``/``false``,
    datetimes epoch seconds; floats are refused because Stripe amounts are integer minor units.
    """
    out: dict[str, str] = {}

    def walk(key: str, value: Any) -> None:
        if value is None:
            return
        if isinstance(value, Mapping):
            for sub_key, sub_value in value.items():
                walk(f"{key}[{sub_key}]", sub_value)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                walk(f"{key}[{index}]", item)
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, float):
            raise ConnectorValidationError(
                f"Stripe parameter {key}={value!r} is a float; pass amounts as integers in minor units "
                "(e.g. 1099 for 10.99) and decimals as Decimal or str",
                connector="stripe",
            )
        elif isinstance(value, datetime):
            out[key] = str(int(to_utc(value).timestamp()))
        elif isinstance(value, int | str | Decimal):
            out[key] = str(value)
        else:
            raise ConnectorValidationError(
                f"Stripe parameter {key} has unsupported type {type(value).__name__}", connector="stripe"
            )

    for name, value in params.items():
        walk(str(name), value)
    return out


class StripeConnector(IntegrationConnector):
    """Stripe's REST API v1 (https://api.stripe.com, or any ``base_url``: a mock, stripe-mock, a proxy).

    Lists are async iterators over ``limit``/``starting_after``/``has_more`` pages, newest first,
    optionally restricted to ``created`` in [since, until). POSTs are form-encoded and carry an
    ``Idempotency-Key`` (the caller's, or a uuid4 per logical call, reused by every retry of it).
    Rate limit: Stripe's published 100 operations/s in live mode, 25/s with test keys.
    """

    NAME: ClassVar[str] = "stripe"
    DISPLAY_NAME: ClassVar[str] = "Stripe"
    CREDENTIALS_CLASS: ClassVar[type[StripeCredentials]] = StripeCredentials
    DEFAULT_BASE_URL: ClassVar[str] = "https://api.stripe.com"
    ENV_NAME: ClassVar[str] = "STRIPE"
    RATE_LIMIT: ClassVar[tuple[float, float] | None] = (100.0, 1.0)
    TEST_MODE_RATE_LIMIT: ClassVar[tuple[float, float]] = (25.0, 1.0)
    PAGE_SIZE: ClassVar[int] = 100
    OBJECT_TYPES: ClassVar[tuple[str, ...]] = tuple(OBJECT_MODELS)
    # Which writes each object supports (Stripe updates are POSTs to the object's URL).
    WRITES: ClassVar[dict[str, frozenset[str]]] = {
        "customers": frozenset({"create", "update", "delete"}),
        "charges": frozenset({"update"}),
        "payment_intents": frozenset({"create", "update"}),
        "invoices": frozenset({"create", "update", "delete"}),
        "subscriptions": frozenset({"create", "update", "delete"}),
        "refunds": frozenset({"create", "update"}),
        "events": frozenset(),
    }
    # Subscriptions lists hide canceled ones unless asked for all.
    LIST_PARAMS: ClassVar[dict[str, dict[str, str]]] = {"subscriptions": {"status": "all"}}

    credentials: StripeCredentials

    def __init__(self, credentials: StripeCredentials | None = None, **settings: Any) -> None:
        """``credentials=None`` reads them from the environment; a test-mode key paces at the test-mode limit."""
        super().__init__(credentials, **settings)
        if settings.get("rate_limit") is None and self.credentials.secret_key.startswith(("sk_test_", "rk_test_")):
            self.rate_limit = self.TEST_MODE_RATE_LIMIT

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.secret_key}"}

    # --- helpers --------------------------------------------------------------------------
    def _model(self, object_type: str) -> type[StripeObject]:
        self._check_object_type(object_type)
        return OBJECT_MODELS[object_type]

    def _path(self, object_type: str, object_id: str | None = None) -> str:
        self._model(object_type)
        if object_id is None:
            return f"/v1/{object_type}"
        if not isinstance(object_id, str) or not object_id.strip():
            raise ConnectorValidationError(f"a Stripe {object_type} id must be a non-empty string", connector=self.NAME)
        return f"/v1/{object_type}/{quote(object_id, safe='')}"

    def _check_write(self, object_type: str, operation: str) -> None:
        self._model(object_type)
        if operation not in self.WRITES[object_type]:
            allowed = ", ".join(sorted(self.WRITES[object_type])) or "none (read-only)"
            raise ConnectorValidationError(
                f"Stripe {object_type} do not support {operation}; supported writes: {allowed}", connector=self.NAME
            )

    def _window_params(self, since: datetime | None, until: datetime | None) -> dict[str, int]:
        """``created`` bounds in whole epoch seconds, rounded up, so [since, until) stays exact."""
        since, until = self._check_window(since, until)
        params: dict[str, int] = {}
        if since is not None:
            params["created[gte]"] = epoch_ceil(since)
        if until is not None:
            params["created[lt]"] = epoch_ceil(until)
        return params

    async def _post(self, endpoint: str, params: Mapping[str, Any], idempotency_key: str | None) -> Any:
        """POST a form body with one Idempotency-Key for the logical call (every retry resends the same)."""
        key = idempotency_key or str(uuid.uuid4())
        return await self._request(
            "POST", endpoint, form=encode_form(params), headers={"Idempotency-Key": key}, operation=f"POST {endpoint}"
        )

    # --- listing ----------------------------------------------------------------------------
    async def iter_objects(
        self,
        object_type: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StripeObject]:
        """Every ``object_type`` object created in [since, until), newest first, up to ``limit``."""
        pages = self._iter(self._model(object_type), object_type, since=since, until=until, limit=limit)
        async with aclosing(pages) as items:
            async for item in items:
                yield item

    async def _iter(
        self,
        model: type[M],
        object_type: str,
        *,
        since: datetime | None,
        until: datetime | None,
        limit: int | None,
    ) -> AsyncIterator[M]:
        self._check_limit(limit)
        endpoint = self._path(object_type)
        params: dict[str, Any] = {**self.LIST_PARAMS.get(object_type, {}), **self._window_params(since, until)}
        guard = PaginationGuard(self.NAME, f"list {object_type}")
        yielded = 0
        while True:
            params["limit"] = self.PAGE_SIZE if limit is None else min(self.PAGE_SIZE, limit - yielded)
            body = await self._request("GET", endpoint, params=params, operation=f"list {object_type}")
            if not isinstance(body, Mapping) or not isinstance(body.get("data"), list):
                raise ConnectorParseError(
                    f"list {object_type}: expected a Stripe list object with a data array", connector=self.NAME
                )
            items = [model.from_api(item) for item in body["data"]]
            for item in items:
                yield item
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            if not body.get("has_more"):
                return
            if not items:
                raise ConnectorParseError(
                    f"list {object_type}: has_more is true but the page is empty; stopping", connector=self.NAME
                )
            guard.check(items[-1].id)
            params["starting_after"] = items[-1].id

    def list_customers(self, *, since: datetime | None = None, until: datetime | None = None,
                       limit: int | None = None) -> AsyncIterator[Customer]:
        """Customers created in [since, until), newest first."""
        return self._iter(Customer, "customers", since=since, until=until, limit=limit)

    def list_charges(self, *, since: datetime | None = None, until: datetime | None = None,
                     limit: int | None = None) -> AsyncIterator[Charge]:
        """Charges created in [since, until), newest first."""
        return self._iter(Charge, "charges", since=since, until=until, limit=limit)

    def list_payment_intents(self, *, since: datetime | None = None, until: datetime | None = None,
                             limit: int | None = None) -> AsyncIterator[PaymentIntent]:
        """Payment intents created in [since, until), newest first."""
        return self._iter(PaymentIntent, "payment_intents", since=since, until=until, limit=limit)

    def list_invoices(self, *, since: datetime | None = None, until: datetime | None = None,
                      limit: int | None = None) -> AsyncIterator[Invoice]:
        """Invoices created in [since, until), newest first."""
        return self._iter(Invoice, "invoices", since=since, until=until, limit=limit)

    def list_subscriptions(self, *, since: datetime | None = None, until: datetime | None = None,
                           limit: int | None = None) -> AsyncIterator[Subscription]:
        """Subscriptions (every status, canceled included) created in [since, until), newest first."""
        return self._iter(Subscription, "subscriptions", since=since, until=until, limit=limit)

    def list_refunds(self, *, since: datetime | None = None, until: datetime | None = None,
                     limit: int | None = None) -> AsyncIterator[Refund]:
        """Refunds created in [since, until), newest first."""
        return self._iter(Refund, "refunds", since=since, until=until, limit=limit)

    def list_events(self, *, since: datetime | None = None, until: datetime | None = None,
                    limit: int | None = None) -> AsyncIterator[StripeEvent]:
        """Events (Stripe keeps 30 days) created in [since, until), newest first."""
        return self._iter(StripeEvent, "events", since=since, until=until, limit=limit)

    # --- single objects -----------------------------------------------------------------------
    async def _get(self, model: type[M], object_type: str, object_id: str) -> M:
        body = await self._request("GET", self._path(object_type, object_id), operation=f"get {object_type}")
        return model.from_api(body)

    async def _create(self, model: type[M], object_type: str, params: Mapping[str, Any], key: str | None) -> M:
        self._check_write(object_type, "create")
        return model.from_api(await self._post(self._path(object_type), params, key))

    async def _update(
        self, model: type[M], object_type: str, object_id: str, params: Mapping[str, Any], key: str | None
    ) -> M:
        self._check_write(object_type, "update")
        return model.from_api(await self._post(self._path(object_type, object_id), params, key))

    async def _delete(self, model: type[M], object_type: str, object_id: str) -> M:
        self._check_write(object_type, "delete")
        body = await self._request("DELETE", self._path(object_type, object_id), operation=f"delete {object_type}")
        return model.from_api(body)

    async def get_object(self, object_type: str, object_id: str) -> StripeObject:
        """One object by id; a missing one raises ConnectorNotFoundError."""
        return await self._get(self._model(object_type), object_type, object_id)

    async def create_object(
        self, object_type: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> StripeObject:
        """Create an object from ``params`` (nested mappings allowed), safely retried via its idempotency key."""
        return await self._create(self._model(object_type), object_type, params, idempotency_key)

    async def update_object(
        self, object_type: str, object_id: str, params: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> StripeObject:
        """Update the given fields of an object (Stripe: POST to the object's URL)."""
        return await self._update(self._model(object_type), object_type, object_id, params, idempotency_key)

    async def delete_object(self, object_type: str, object_id: str) -> StripeObject:
        """DELETE an object: deletes a customer or draft invoice, cancels a subscription."""
        return await self._delete(self._model(object_type), object_type, object_id)

    async def get_customer(self, customer_id: str) -> Customer:
        """One customer by id."""
        return await self._get(Customer, "customers", customer_id)

    async def create_customer(self, *, idempotency_key: str | None = None, **params: Any) -> Customer:
        """Create a customer (``email=``, ``name=``, ``metadata={...}``, any Stripe parameter)."""
        return await self._create(Customer, "customers", params, idempotency_key)

    async def update_customer(self, customer_id: str, *, idempotency_key: str | None = None, **params: Any) -> Customer:
        """Update a customer's fields."""
        return await self._update(Customer, "customers", customer_id, params, idempotency_key)

    async def delete_customer(self, customer_id: str) -> Customer:
        """Delete a customer; the answer is the stub with ``deleted=True``."""
        return await self._delete(Customer, "customers", customer_id)

    async def get_charge(self, charge_id: str) -> Charge:
        """One charge by id."""
        return await self._get(Charge, "charges", charge_id)

    async def get_payment_intent(self, payment_intent_id: str) -> PaymentIntent:
        """One payment intent by id."""
        return await self._get(PaymentIntent, "payment_intents", payment_intent_id)

    async def create_payment_intent(
        self, amount: int, currency: str, *, idempotency_key: str | None = None, **params: Any
    ) -> PaymentIntent:
        """Create a payment intent for ``amount`` minor units of ``currency`` (an int: 1099 is 10.99)."""
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ConnectorValidationError(
                f"amount must be a non-negative integer in minor units, got {amount!r}", connector=self.NAME
            )
        fields = {"amount": amount, "currency": currency, **params}
        return await self._create(PaymentIntent, "payment_intents", fields, idempotency_key)

    async def get_invoice(self, invoice_id: str) -> Invoice:
        """One invoice by id."""
        return await self._get(Invoice, "invoices", invoice_id)

    async def get_subscription(self, subscription_id: str) -> Subscription:
        """One subscription by id."""
        return await self._get(Subscription, "subscriptions", subscription_id)

    async def cancel_subscription(self, subscription_id: str) -> Subscription:
        """Cancel a subscription now (Stripe: DELETE on the subscription)."""
        return await self._delete(Subscription, "subscriptions", subscription_id)

    async def get_refund(self, refund_id: str) -> Refund:
        """One refund by id."""
        return await self._get(Refund, "refunds", refund_id)

    async def create_refund(
        self,
        *,
        charge: str | None = None,
        payment_intent: str | None = None,
        amount: int | None = None,
        idempotency_key: str | None = None,
        **params: Any,
    ) -> Refund:
        """Refund a charge or payment intent, fully or ``amount`` minor units of it."""
        if not charge and not payment_intent:
            raise ConnectorValidationError("create_refund needs charge= or payment_intent=", connector=self.NAME)
        fields = {"charge": charge, "payment_intent": payment_intent, "amount": amount, **params}
        return await self._create(Refund, "refunds", fields, idempotency_key)

    async def get_event(self, event_id: str) -> StripeEvent:
        """One event by id."""
        return await self._get(StripeEvent, "events", event_id)

    # --- webhooks ---------------------------------------------------------------------------
    def verify_webhook(
        self,
        payload: bytes,
        headers: Mapping[str, str],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        now: float | None = None,
        seen: SeenDeliveries | None = None,
    ) -> StripeEvent:
        """Verify a delivery with the credentials' webhook secret and return its event (``seen``: report a replay)."""
        secret = self.credentials.require("webhook_secret", "no Stripe webhook secret")
        verify_signature(payload, headers, secret, tolerance=tolerance, now=now, seen=seen)
        return parse_event(payload)
