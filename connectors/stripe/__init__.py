"""Stripe integration connector: payments, customers, invoices, subscriptions, refunds, events."""

from connectors.stripe.connector import StripeConnector, encode_form
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
from connectors.stripe.webhooks import SIGNATURE_HEADER, parse_event, verify_signature

__all__ = [
    "OBJECT_MODELS",
    "SIGNATURE_HEADER",
    "Charge",
    "Customer",
    "Invoice",
    "PaymentIntent",
    "Refund",
    "StripeConnector",
    "StripeCredentials",
    "StripeEvent",
    "StripeObject",
    "Subscription",
    "encode_form",
    "parse_event",
    "verify_signature",
]
