"""Typed Stripe objects: the fields an analyst needs as attributes, the whole API object in ``raw``.

Amounts stay integers in the currency's minor units (Stripe's own representation), next to
their lower-case ISO currency code; a non-integer amount is a parse error, never a float.
Timestamps are aware UTC datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Self

from connectors.exceptions import ConnectorParseError
from connectors.text import parse_datetime, text_or_none


def _amount(data: Mapping[str, Any], key: str) -> int | None:
    """An amount in minor units; anything but an integer (or null) is a parse error."""
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConnectorParseError(
            f"Stripe {data.get('object', 'object')} {data.get('id')}: {key} must be an integer amount in minor "
            f"units, got {value!r}",
            connector="stripe",
        )
    return value


def _ref(value: Any) -> str | None:
    """The id behind an expandable field: a bare id, or the expanded object's id."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return str(value) if value else None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


@dataclass(kw_only=True)
class StripeObject:
    """What every Stripe object shares; ``raw`` keeps the whole API object so nothing is lost."""

    OBJECT: ClassVar[str] = ""

    id: str
    created_at: datetime | None = None
    livemode: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        """Build from an API object; a missing id or another object type is a parse error."""
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
            raise ConnectorParseError(
                f"expected a Stripe {cls.OBJECT or 'object'} with an id, got {str(data)[:120]}", connector="stripe"
            )
        kind = data.get("object")
        if cls.OBJECT and kind is not None and kind != cls.OBJECT:
            raise ConnectorParseError(
                f"expected a Stripe {cls.OBJECT}, got {kind!r} ({data['id']})", connector="stripe"
            )
        return cls(
            id=data["id"],
            created_at=parse_datetime(data.get("created")),
            livemode=bool(data.get("livemode")),
            metadata=dict(_mapping(data.get("metadata"))),
            raw=dict(data),
            **cls._fields(data),
        )

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        """The type-specific attributes (each subclass adds its own)."""
        return {}


@dataclass(kw_only=True)
class Customer(StripeObject):
    """A customer; ``balance`` is in minor units of ``currency`` (negative means credit)."""

    OBJECT: ClassVar[str] = "customer"

    email: str | None = None
    name: str | None = None
    phone: str | None = None
    description: str | None = None
    currency: str | None = None
    balance: int | None = None
    delinquent: bool | None = None
    deleted: bool = False

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "email": text_or_none(data.get("email")),
            "name": text_or_none(data.get("name")),
            "phone": text_or_none(data.get("phone")),
            "description": text_or_none(data.get("description")),
            "currency": text_or_none(data.get("currency")),
            "balance": _amount(data, "balance"),
            "delinquent": data.get("delinquent"),
            "deleted": bool(data.get("deleted")),
        }


@dataclass(kw_only=True)
class Charge(StripeObject):
    """A charge: amounts in minor units of ``currency``, its status and what it belongs to."""

    OBJECT: ClassVar[str] = "charge"

    amount: int | None = None
    amount_captured: int | None = None
    amount_refunded: int | None = None
    currency: str | None = None
    status: str | None = None
    paid: bool | None = None
    captured: bool | None = None
    refunded: bool | None = None
    customer_id: str | None = None
    payment_intent_id: str | None = None
    description: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    receipt_email: str | None = None
    billing_email: str | None = None
    billing_name: str | None = None
    payment_method_type: str | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        billing = _mapping(data.get("billing_details"))
        return {
            "amount": _amount(data, "amount"),
            "amount_captured": _amount(data, "amount_captured"),
            "amount_refunded": _amount(data, "amount_refunded"),
            "currency": text_or_none(data.get("currency")),
            "status": text_or_none(data.get("status")),
            "paid": data.get("paid"),
            "captured": data.get("captured"),
            "refunded": data.get("refunded"),
            "customer_id": _ref(data.get("customer")),
            "payment_intent_id": _ref(data.get("payment_intent")),
            "description": text_or_none(data.get("description")),
            "failure_code": text_or_none(data.get("failure_code")),
            "failure_message": text_or_none(data.get("failure_message")),
            "receipt_email": text_or_none(data.get("receipt_email")),
            "billing_email": text_or_none(billing.get("email")),
            "billing_name": text_or_none(billing.get("name")),
            "payment_method_type": text_or_none(_mapping(data.get("payment_method_details")).get("type")),
        }


@dataclass(kw_only=True)
class PaymentIntent(StripeObject):
    """A payment intent: requested and received amounts in minor units, status, customer."""

    OBJECT: ClassVar[str] = "payment_intent"

    amount: int | None = None
    amount_received: int | None = None
    amount_capturable: int | None = None
    currency: str | None = None
    status: str | None = None
    customer_id: str | None = None
    description: str | None = None
    latest_charge_id: str | None = None
    receipt_email: str | None = None
    canceled_at: datetime | None = None
    cancellation_reason: str | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "amount": _amount(data, "amount"),
            "amount_received": _amount(data, "amount_received"),
            "amount_capturable": _amount(data, "amount_capturable"),
            "currency": text_or_none(data.get("currency")),
            "status": text_or_none(data.get("status")),
            "customer_id": _ref(data.get("customer")),
            "description": text_or_none(data.get("description")),
            "latest_charge_id": _ref(data.get("latest_charge")),
            "receipt_email": text_or_none(data.get("receipt_email")),
            "canceled_at": parse_datetime(data.get("canceled_at")),
            "cancellation_reason": text_or_none(data.get("cancellation_reason")),
        }


@dataclass(kw_only=True)
class Invoice(StripeObject):
    """An invoice: due, paid and remaining amounts in minor units, its period and status."""

    OBJECT: ClassVar[str] = "invoice"

    number: str | None = None
    status: str | None = None
    customer_id: str | None = None
    customer_email: str | None = None
    subscription_id: str | None = None
    currency: str | None = None
    amount_due: int | None = None
    amount_paid: int | None = None
    amount_remaining: int | None = None
    subtotal: int | None = None
    total: int | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    due_at: datetime | None = None
    paid_at: datetime | None = None
    hosted_invoice_url: str | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        # Newer API versions moved the subscription under parent.subscription_details.
        parent = _mapping(_mapping(data.get("parent")).get("subscription_details"))
        return {
            "number": text_or_none(data.get("number")),
            "status": text_or_none(data.get("status")),
            "customer_id": _ref(data.get("customer")),
            "customer_email": text_or_none(data.get("customer_email")),
            "subscription_id": _ref(data.get("subscription") or parent.get("subscription")),
            "currency": text_or_none(data.get("currency")),
            "amount_due": _amount(data, "amount_due"),
            "amount_paid": _amount(data, "amount_paid"),
            "amount_remaining": _amount(data, "amount_remaining"),
            "subtotal": _amount(data, "subtotal"),
            "total": _amount(data, "total"),
            "period_start": parse_datetime(data.get("period_start")),
            "period_end": parse_datetime(data.get("period_end")),
            "due_at": parse_datetime(data.get("due_date")),
            "paid_at": parse_datetime(_mapping(data.get("status_transitions")).get("paid_at")),
            "hosted_invoice_url": text_or_none(data.get("hosted_invoice_url")),
        }


@dataclass(kw_only=True)
class Subscription(StripeObject):
    """A subscription: status, customer, current period, cancellation and the prices it bills."""

    OBJECT: ClassVar[str] = "subscription"

    status: str | None = None
    customer_id: str | None = None
    currency: str | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool | None = None
    canceled_at: datetime | None = None
    ended_at: datetime | None = None
    trial_end: datetime | None = None
    price_ids: list[str] = field(default_factory=list)

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        items = [i for i in _mapping(data.get("items")).get("data") or [] if isinstance(i, Mapping)]
        # Newer API versions report the current period per item rather than on the subscription.
        period = data if data.get("current_period_start") else (items[0] if items else {})
        return {
            "status": text_or_none(data.get("status")),
            "customer_id": _ref(data.get("customer")),
            "currency": text_or_none(data.get("currency")),
            "current_period_start": parse_datetime(period.get("current_period_start")),
            "current_period_end": parse_datetime(period.get("current_period_end")),
            "cancel_at_period_end": data.get("cancel_at_period_end"),
            "canceled_at": parse_datetime(data.get("canceled_at")),
            "ended_at": parse_datetime(data.get("ended_at")),
            "trial_end": parse_datetime(data.get("trial_end")),
            "price_ids": [pid for pid in (_ref(i.get("price")) for i in items) if pid],
        }


@dataclass(kw_only=True)
class Refund(StripeObject):
    """A refund: amount in minor units, status, reason and the charge or payment intent refunded."""

    OBJECT: ClassVar[str] = "refund"

    amount: int | None = None
    currency: str | None = None
    status: str | None = None
    reason: str | None = None
    charge_id: str | None = None
    payment_intent_id: str | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "amount": _amount(data, "amount"),
            "currency": text_or_none(data.get("currency")),
            "status": text_or_none(data.get("status")),
            "reason": text_or_none(data.get("reason")),
            "charge_id": _ref(data.get("charge")),
            "payment_intent_id": _ref(data.get("payment_intent")),
        }


@dataclass(kw_only=True)
class StripeEvent(StripeObject):
    """An event (API list or webhook delivery): its type and the object it carries."""

    OBJECT: ClassVar[str] = "event"

    type: str = ""
    api_version: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    data_object: dict[str, Any] = field(default_factory=dict, repr=False)
    previous_attributes: dict[str, Any] | None = field(default=None, repr=False)
    pending_webhooks: int | None = None
    request_id: str | None = None
    idempotency_key: str | None = None

    @classmethod
    def _fields(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        payload = _mapping(data.get("data"))
        obj = dict(_mapping(payload.get("object")))
        request = data.get("request")  # an object, or a bare request id on old API versions
        previous = payload.get("previous_attributes")
        return {
            "type": str(data.get("type") or ""),
            "api_version": text_or_none(data.get("api_version")),
            "object_type": text_or_none(obj.get("object")),
            "object_id": text_or_none(obj.get("id")),
            "data_object": obj,
            "previous_attributes": dict(previous) if isinstance(previous, Mapping) else None,
            "pending_webhooks": data.get("pending_webhooks"),
            "request_id": _ref(request),
            "idempotency_key": text_or_none(_mapping(request).get("idempotency_key")),
        }

    def typed_object(self) -> StripeObject | None:
        """The carried object as its model (a ``Customer`` for ``customer.updated``), None for other types."""
        model = MODELS_BY_OBJECT.get(self.object_type or "")
        return model.from_api(self.data_object) if model else None


OBJECT_MODELS: dict[str, type[StripeObject]] = {
    "customers": Customer,
    "charges": Charge,
    "payment_intents": PaymentIntent,
    "invoices": Invoice,
    "subscriptions": Subscription,
    "refunds": Refund,
    "events": StripeEvent,
}
"""List endpoint name (``/v1/<name>``) -> model."""

MODELS_BY_OBJECT: dict[str, type[StripeObject]] = {model.OBJECT: model for model in OBJECT_MODELS.values()}
"""Stripe's ``object`` value -> model."""
