"""A local HTTP server speaking a subset of Stripe's v1 wire format, for driving the real SDK in tests.

Point the SDK at it with ``stripe.StripeClient(fake.api_key, base_addresses={"api": fake.url})`` or, for
the module-level API, ``stripe.api_base = fake.url``.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

JSON = dict[str, Any]
Route = tuple[str, re.Pattern[str], Callable[..., JSON]]

DEFAULT_API_VERSION = "2026-10-28.endive"
ERROR_DOCS = "https://stripe.com/docs/error-codes/"

# Test payment method id -> "approve", "authenticate" or the issuer's decline code.
TEST_PAYMENT_METHODS: dict[str, str] = {
    "pm_card_visa": "approve",
    "pm_card_mastercard": "approve",
    "pm_card_authenticationRequired": "authenticate",
    "pm_card_chargeDeclined": "generic_decline",
    "pm_card_visa_chargeDeclinedInsufficientFunds": "insufficient_funds",
}
_DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}
_CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action")
_PAYMENT_PARAMS = ("payment_method", "payment_method_types", "automatic_payment_methods", "return_url")
_CREATE_PARAMS = frozenset(
    {"amount", "currency", "capture_method", "confirm", "metadata", "description", *_PAYMENT_PARAMS}
)
_CAPTURE_METHODS = ("automatic", "automatic_async", "manual")
_UNSET_FIELDS = ("canceled_at", "cancellation_reason", "last_payment_error", "latest_charge", "next_action")
_NAME = re.compile(r"([^\[\]]+)((?:\[[^\[\]]*\])*)")


class _StripeFailure(Exception):
    """A Stripe-shaped error response, raised inside request handling."""

    def __init__(self, status: int, error: JSON) -> None:
        super().__init__(error["message"])
        self.status = status
        self.error = error


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request as the fake received it."""

    method: str
    path: str
    params: JSON
    idempotency_key: str | None
    api_key: str | None


@dataclass
class _Fault:
    remaining: int
    status: int | Literal["timeout"]
    path_prefix: str
    delay: float


@dataclass(frozen=True)
class _Response:
    status: int
    payload: bytes
    idempotency_key: str | None = None
    replayed: bool = False


def parse_form(body: str) -> JSON:
    """Decode Stripe's form encoding (``a[b]=x``, ``l[0]=y``, ``l[]=z``) into nested dicts and lists."""
    root: JSON = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        match = _NAME.fullmatch(key)
        path = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])] if match else [key]
        node = root
        for part in path[:-1]:
            part = part or str(len(node))
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1] or str(len(node))] = value
    return {key: _listify(value, key) for key, value in root.items()}


def _listify(value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        return value
    items = {k: _listify(v, k) for k, v in value.items()}
    if key != "metadata" and items and set(items) == {str(i) for i in range(len(items))}:
        return [items[str(i)] for i in range(len(items))]
    return items


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """Return the ``Stripe-Signature`` header Stripe would send with this webhook payload."""
    signed_at = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{signed_at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={signed_at},v1={digest}"


def _encode(obj: JSON) -> bytes:
    return json.dumps(obj, indent=2).encode()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def _new_object(object_type: str, prefix: str, **fields: Any) -> JSON:
    return {
        "id": _new_id(prefix),
        "object": object_type,
        "created": int(time.time()),
        "livemode": False,
        **fields,
    }


def _invalid(
    message: str, param: str | None = None, code: str | None = None, *, status: int = 400, **extra: Any
) -> _StripeFailure:
    error: JSON = {"type": "invalid_request_error", "message": message, **extra}
    if param:
        error["param"] = param
    if code:
        error.update(code=code, doc_url=ERROR_DOCS + code.replace("_", "-"))
    return _StripeFailure(status, error)


def _check_params(params: JSON, allowed: frozenset[str]) -> None:
    unknown = sorted(set(params) - allowed)
    if unknown:
        raise _invalid(f"Received unknown parameter: {unknown[0]}", unknown[0], "parameter_unknown")


def _string(params: JSON, name: str) -> str | None:
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise _invalid(f"Invalid string: {value!r}", name)
    return value


def _required(params: JSON, name: str) -> str:
    value = _string(params, name)
    if value is None:
        raise _invalid(f"Missing required param: {name}.", name, "parameter_missing")
    return value


def _amount(params: JSON, name: str, *, required: bool = False) -> int | None:
    raw = _required(params, name) if required else _string(params, name)
    if raw is None:
        return None
    if not re.fullmatch(r"-?\d+", raw):
        raise _invalid(f"Invalid integer: {raw}", name, "parameter_invalid_integer")
    if int(raw) < 1:
        raise _invalid(
            f"{name} must be at least 1 (in the smallest currency unit).", name, "amount_too_small"
        )
    return int(raw)


def _boolean(params: JSON, name: str) -> bool:
    raw = _string(params, name)
    if raw not in (None, "true", "false"):
        raise _invalid(f"Invalid boolean: {raw}", name)
    return raw == "true"


def _choice(params: JSON, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = _string(params, name)
    if value is None:
        return default
    if value not in allowed:
        raise _invalid(f"Invalid {name}: must be one of {', '.join(allowed)}", name)
    return value


def _apply_metadata(obj: JSON, params: JSON) -> None:
    raw = params.get("metadata")
    if raw == "":
        obj["metadata"] = {}
    elif isinstance(raw, dict) and all(isinstance(v, str) for v in raw.values()):
        for key, value in raw.items():
            if value:
                obj["metadata"][key] = value
            else:
                obj["metadata"].pop(key, None)
    elif raw is not None:
        raise _invalid("Invalid hash", "metadata")


def _state_error(intent: JSON, verb: str, allowed: tuple[str, ...]) -> _StripeFailure:
    return _invalid(
        f"This PaymentIntent could not be {verb} because it has a status of {intent['status']}. "
        f"Only a PaymentIntent with one of the following statuses may be {verb}: {', '.join(allowed)}.",
        code="payment_intent_unexpected_state",
        payment_intent=intent,
    )


def _next_action(intent_id: str, return_url: str | None) -> JSON:
    hosted = f"https://hooks.stripe.com/3d_secure_2/hosted?payment_intent={intent_id}"
    if return_url:
        return {"type": "redirect_to_url", "redirect_to_url": {"url": hosted, "return_url": return_url}}
    return {
        "type": "use_stripe_sdk",
        "use_stripe_sdk": {"type": "three_d_secure_redirect", "stripe_js": hosted},
    }


class StripeFake:
    """An in-memory Stripe (PaymentIntents, charges, refunds, events) behind a real local HTTP server."""

    def __init__(self, api_key: str = "sk_test_hanoipay", api_version: str = DEFAULT_API_VERSION) -> None:
        if not api_key.startswith("sk_test_"):
            raise ValueError("StripeFake only accepts sk_test_ keys")
        self.api_key = api_key
        self.api_version = api_version
        self.requests: list[RecordedRequest] = []
        self.events: list[JSON] = []
        self.payment_intents: dict[str, JSON] = {}
        self.charges: dict[str, JSON] = {}
        self.refunds: dict[str, JSON] = {}
        self.balance_transactions: dict[str, JSON] = {}
        self.payouts: dict[str, JSON] = {}
        # Stripe's price for a card payment, as this fake charges it: bps of the amount (half up) + fixed.
        self.fee_bps, self.fee_fixed = 340, 2_000
        self._paid_out: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._idempotency: dict[tuple[str, str], tuple[str, _Response]] = {}
        self._current_request: JSON = {"id": None, "idempotency_key": None}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        intent = r"/v1/payment_intents/([^/]+)"
        self._routes: list[Route] = [
            ("POST", re.compile(r"/v1/payment_intents"), self._create_intent),
            ("GET", re.compile(intent), self._retrieve_intent),
            ("POST", re.compile(intent), self._update_intent),
            ("POST", re.compile(intent + "/confirm"), self._confirm_intent),
            ("POST", re.compile(intent + "/capture"), self._capture_intent),
            ("POST", re.compile(intent + "/cancel"), self._cancel_intent),
            ("GET", re.compile(r"/v1/charges/([^/]+)"), self._retrieve_charge),
            ("POST", re.compile(r"/v1/refunds"), self._create_refund),
            ("GET", re.compile(r"/v1/refunds/([^/]+)"), self._retrieve_refund),
            ("GET", re.compile(r"/v1/balance_transactions"), self._list_balance_transactions),
            ("GET", re.compile(r"/v1/balance_transactions/([^/]+)"), self._retrieve_balance_transaction),
            ("POST", re.compile(r"/v1/payouts"), self._create_payout),
            ("GET", re.compile(r"/v1/payouts/([^/]+)"), self._retrieve_payout),
        ]

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Bind an ephemeral port on 127.0.0.1 and serve requests from a background thread."""
        if self._server is not None:
            raise RuntimeError("StripeFake is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="stripe-fake", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving, wake any delayed responses and join every server thread."""
        if self._server is None or self._thread is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
        self._server = self._thread = None

    def __enter__(self) -> StripeFake:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL to use as the SDK's API base, e.g. ``http://127.0.0.1:54321``."""
        if self._server is None:
            raise RuntimeError("StripeFake is not running")
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- test controls ---------------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int | Literal["timeout"] = 500,
        path_prefix: str = "/v1/payment_intents",
        delay: float = 2.0,
    ) -> None:
        """Fail the next n requests under path_prefix: a 5xx ``api_error``, or ``"timeout"``.

        A timeout still applies the request (and stores its idempotent result) but answers only after
        ``delay`` seconds, like a network timeout after Stripe did the work. Injected 5xx errors happen in
        front of the API, so they are not stored under the idempotency key and a retry is processed afresh.
        """
        if n < 1:
            raise ValueError("n must be at least 1")
        with self._lock:
            self._faults.append(_Fault(n, status, path_prefix, delay))

    def complete_next_action(self, intent_id: str, *, succeed: bool = True) -> JSON:
        """Simulate the customer passing (or failing) 3-D Secure on an intent in ``requires_action``."""
        with self._lock:
            intent = self.payment_intents[intent_id]
            if intent["status"] != "requires_action":
                raise ValueError(f"{intent_id} is {intent['status']}, not requires_action")
            intent["next_action"] = None
            if succeed:
                self._authorize(intent)
            else:
                error = {
                    "type": "invalid_request_error",
                    "code": "payment_intent_authentication_failure",
                    "message": "The provided PaymentMethod has failed authentication.",
                }
                intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
                self._emit("payment_intent.payment_failed", intent)
            return copy.deepcopy(intent)

    def add_balance_transaction(
        self,
        type: str,
        amount: int,
        fee: int = 0,
        *,
        currency: str = "vnd",
        source: str | None = None,
        created: int | None = None,
        description: str | None = None,
    ) -> JSON:
        """Record a balance transaction directly, as Stripe would for fees, adjustments or test breaks."""
        with self._lock:
            return copy.deepcopy(
                self._add_balance_transaction(type, amount, fee, currency, source, description, created)
            )

    def edit_balance_transaction(self, txn_id: str, **fields: Any) -> JSON:
        """Change a recorded balance transaction (its fee, amount or time), keeping net = amount - fee."""
        with self._lock:
            txn = self.balance_transactions[txn_id]
            txn.update(fields)
            txn["net"] = txn["amount"] - txn["fee"]
            txn["fee_details"] = [self._fee_detail(txn["fee"], txn["currency"])] if txn["fee"] else []
            return copy.deepcopy(txn)

    @staticmethod
    def event_payload(event: JSON) -> bytes:
        """Serialise an event the way Stripe sends it as a webhook body."""
        return _encode(event)

    # -- request pipeline ------------------------------------------------------------------------------

    def _handle(
        self, method: str, target: str, body: str, headers: dict[str, str], request_id: str
    ) -> tuple[_Response, float]:
        url = urlsplit(target)
        params = parse_form("&".join(part for part in (url.query, body) if part))
        authorization = headers.get("authorization", "")
        api_key = authorization.removeprefix("Bearer ").strip() or None
        idempotency_key = headers.get("idempotency-key") if method == "POST" else None
        with self._lock:
            self.requests.append(RecordedRequest(method, url.path, params, idempotency_key, api_key))
            self._current_request = {"id": request_id, "idempotency_key": idempotency_key}
            delay = 0.0
            try:
                account = self._authenticate(api_key)
                fault = self._take_fault(url.path)
                if fault and fault.status != "timeout":
                    message = "An unknown error occurred while processing your request (fail_next)."
                    raise _StripeFailure(fault.status, {"type": "api_error", "message": message})
                delay = fault.delay if fault else 0.0
                response = self._idempotent(method, url.path, params, account, idempotency_key)
            except _StripeFailure as failure:
                response = _Response(failure.status, _encode({"error": failure.error}))
            finally:
                self._current_request = {"id": None, "idempotency_key": None}
        return response, delay

    def _authenticate(self, api_key: str | None) -> str:
        if not api_key:
            raise _invalid(
                "You did not provide an API key (use Bearer auth in the Authorization header).", status=401
            )
        if not api_key.startswith("sk_test_"):
            masked = api_key if len(api_key) <= 12 else api_key[:8] + "*" * (len(api_key) - 12) + api_key[-4:]
            raise _invalid(f"Invalid API Key provided: {masked}", status=401)
        return api_key

    def _take_fault(self, path: str) -> _Fault | None:
        for fault in self._faults:
            if path.startswith(fault.path_prefix):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _idempotent(self, method: str, path: str, params: JSON, api_key: str, key: str | None) -> _Response:
        if key is None:
            return self._dispatch(method, path, params)
        fingerprint = json.dumps([method, path, params], sort_keys=True)
        stored = self._idempotency.get((api_key, key))
        if stored is None:
            response = replace(self._dispatch(method, path, params), idempotency_key=key)
            self._idempotency[api_key, key] = (fingerprint, response)
            return response
        if stored[0] != fingerprint:
            message = (
                "Keys for idempotent requests can only be used with the same parameters they were first used "
                f"with. Try using a key other than '{key}' if you meant to execute a different request."
            )
            raise _StripeFailure(400, {"type": "idempotency_error", "message": message})
        return replace(stored[1], replayed=True)

    def _dispatch(self, method: str, path: str, params: JSON) -> _Response:
        for route_method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and route_method == method:
                try:
                    return _Response(200, _encode(handler(params, *match.groups())))
                except _StripeFailure as failure:
                    return _Response(failure.status, _encode({"error": failure.error}))
        raise _invalid(f"Unrecognized request URL ({method}: {path}).", status=404)

    def _emit(self, event_type: str, obj: JSON) -> None:
        event = _new_object("event", "evt", type=event_type, api_version=self.api_version, pending_webhooks=1)
        event.update(data={"object": copy.deepcopy(obj)}, request=dict(self._current_request))
        self.events.append(event)

    @staticmethod
    def _lookup(store: dict[str, JSON], kind: str, object_id: str, param: str = "id") -> JSON:
        if object_id not in store:
            raise _invalid(f"No such {kind}: '{object_id}'", param, "resource_missing", status=404)
        return store[object_id]

    # -- payment intents -------------------------------------------------------------------------------

    def _create_intent(self, params: JSON) -> JSON:
        _check_params(params, _CREATE_PARAMS)
        amount = _amount(params, "amount", required=True)
        currency = _required(params, "currency").lower()
        capture_method = _choice(params, "capture_method", _CAPTURE_METHODS, "automatic")
        payment_method = _string(params, "payment_method")
        if payment_method:
            self._outcome(payment_method)
        automatic = params.get("automatic_payment_methods")
        if isinstance(automatic, dict):
            redirects = automatic.get("allow_redirects", "always")
            automatic = {"enabled": _boolean(automatic, "enabled"), "allow_redirects": redirects}
        intent = _new_object("payment_intent", "pi", amount=amount, currency=currency, metadata={})
        intent.update(dict.fromkeys(_UNSET_FIELDS), amount_capturable=0, amount_received=0)
        intent.update(capture_method=capture_method, confirmation_method="automatic")
        intent.update(automatic_payment_methods=automatic, description=_string(params, "description"))
        types = params.get("payment_method_types") or ["card"]
        if not isinstance(types, list):
            raise _invalid("Invalid array", "payment_method_types")
        intent.update(payment_method=payment_method, payment_method_types=list(types))
        intent["status"] = "requires_confirmation" if payment_method else "requires_payment_method"
        intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(12)}"
        _apply_metadata(intent, params)
        self.payment_intents[intent["id"]] = intent
        if _boolean(params, "confirm"):
            self._confirm(intent, payment_method, _string(params, "return_url"))
        return intent

    def _retrieve_intent(self, params: JSON, intent_id: str) -> JSON:
        return self._lookup(self.payment_intents, "payment_intent", intent_id)

    def _update_intent(self, params: JSON, intent_id: str) -> JSON:
        _check_params(params, frozenset({"metadata", "description"}))
        intent = self._lookup(self.payment_intents, "payment_intent", intent_id)
        _apply_metadata(intent, params)
        if "description" in params:
            intent["description"] = _string(params, "description") or None
        return intent

    def _confirm_intent(self, params: JSON, intent_id: str) -> JSON:
        _check_params(params, frozenset({"payment_method", "return_url"}))
        intent = self._lookup(self.payment_intents, "payment_intent", intent_id)
        self._confirm(intent, _string(params, "payment_method"), _string(params, "return_url"))
        return intent

    def _capture_intent(self, params: JSON, intent_id: str) -> JSON:
        _check_params(params, frozenset({"amount_to_capture", "metadata"}))
        intent = self._lookup(self.payment_intents, "payment_intent", intent_id)
        if intent["status"] != "requires_capture":
            raise _state_error(intent, "captured", ("requires_capture",))
        capturable = intent["amount_capturable"]
        amount = _amount(params, "amount_to_capture") or capturable
        if amount > capturable:
            raise _invalid(
                f"amount_to_capture ({amount}) must be at most the amount_capturable ({capturable}).",
                "amount_to_capture",
                "amount_too_large",
            )
        self.charges[intent["latest_charge"]].update(captured=True, amount_captured=amount)
        self._charge_settled(self.charges[intent["latest_charge"]], amount)
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        _apply_metadata(intent, params)
        self._emit("payment_intent.succeeded", intent)
        return intent

    def _cancel_intent(self, params: JSON, intent_id: str) -> JSON:
        _check_params(params, frozenset({"cancellation_reason"}))
        intent = self._lookup(self.payment_intents, "payment_intent", intent_id)
        reasons = ("duplicate", "fraudulent", "requested_by_customer", "abandoned")
        reason = _choice(params, "cancellation_reason", reasons, None)
        if intent["status"] not in _CANCELABLE:
            raise _state_error(intent, "canceled", _CANCELABLE)
        intent.update(
            status="canceled",
            cancellation_reason=reason,
            canceled_at=int(time.time()),
            amount_capturable=0,
            next_action=None,
        )
        self._emit("payment_intent.canceled", intent)
        return intent

    def _outcome(self, payment_method: str) -> str:
        if payment_method not in TEST_PAYMENT_METHODS:
            raise _invalid(f"No such PaymentMethod: '{payment_method}'", "payment_method", "resource_missing")
        return TEST_PAYMENT_METHODS[payment_method]

    def _confirm(self, intent: JSON, payment_method: str | None, return_url: str | None) -> None:
        if intent["status"] not in _CONFIRMABLE:
            raise _state_error(intent, "confirmed", _CONFIRMABLE)
        payment_method = payment_method or intent["payment_method"]
        if payment_method is None:
            raise _invalid(
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
                "payment_method",
                "payment_intent_unexpected_state",
                payment_intent=intent,
            )
        outcome = self._outcome(payment_method)
        intent.update(payment_method=payment_method, last_payment_error=None, next_action=None)
        if outcome == "authenticate":
            intent.update(status="requires_action", next_action=_next_action(intent["id"], return_url))
            self._emit("payment_intent.requires_action", intent)
        elif outcome == "approve":
            self._authorize(intent)
        else:
            self._decline(intent, outcome)

    def _new_charge(self, intent: JSON, status: str) -> JSON:
        charge = _new_object(
            "charge", "ch", amount=intent["amount"], currency=intent["currency"], status=status
        )
        charge.update(payment_intent=intent["id"], payment_method=intent["payment_method"])
        charge.update(metadata=dict(intent["metadata"]), balance_transaction=None)
        charge.update(amount_captured=0, amount_refunded=0, captured=False, paid=status == "succeeded")
        charge.update(refunded=False, failure_code=None, failure_message=None)
        url = f"/v1/charges/{charge['id']}/refunds"
        charge["refunds"] = {"object": "list", "data": [], "has_more": False, "total_count": 0, "url": url}
        self.charges[charge["id"]] = charge
        intent["latest_charge"] = charge["id"]
        return charge

    def _authorize(self, intent: JSON) -> None:
        charge = self._new_charge(intent, "succeeded")
        if intent["capture_method"] == "manual":
            intent.update(status="requires_capture", amount_capturable=intent["amount"])
            self._emit("payment_intent.amount_capturable_updated", intent)
        else:
            charge.update(captured=True, amount_captured=intent["amount"])
            self._charge_settled(charge, intent["amount"])
            intent.update(status="succeeded", amount_received=intent["amount"])
            self._emit("payment_intent.succeeded", intent)

    def _decline(self, intent: JSON, decline_code: str) -> None:
        message = _DECLINE_MESSAGES[decline_code]
        charge = self._new_charge(intent, "failed")
        charge.update(failure_code="card_declined", failure_message=message)
        error: JSON = {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": decline_code,
            "message": message,
            "charge": charge["id"],
            "doc_url": ERROR_DOCS + "card-declined",
            "payment_method": {"id": intent["payment_method"], "object": "payment_method", "type": "card"},
        }
        intent.update(status="requires_payment_method", payment_method=None, last_payment_error=error)
        self._emit("payment_intent.payment_failed", intent)
        raise _StripeFailure(402, {**error, "payment_intent": intent})

    # -- charges and refunds ---------------------------------------------------------------------------

    def _retrieve_charge(self, params: JSON, charge_id: str) -> JSON:
        return self._lookup(self.charges, "charge", charge_id)

    def _create_refund(self, params: JSON) -> JSON:
        _check_params(params, frozenset({"payment_intent", "amount", "reason", "metadata"}))
        intent_id = _required(params, "payment_intent")
        intent = self._lookup(self.payment_intents, "payment_intent", intent_id, "payment_intent")
        if intent["status"] != "succeeded":
            raise _invalid(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.",
                "payment_intent",
                "charge_not_refundable",
            )
        charge = self.charges[intent["latest_charge"]]
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        if remaining == 0:
            raise _invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        amount = _amount(params, "amount") or remaining
        if amount > remaining:
            currency = charge["currency"].upper()
            raise _invalid(
                f"Refund amount ({amount} {currency}) is greater than unrefunded amount on charge "
                f"({remaining} {currency})",
                "amount",
                "amount_too_large",
            )
        reason = _choice(params, "reason", ("duplicate", "fraudulent", "requested_by_customer"), None)
        refund = _new_object("refund", "re", amount=amount, currency=charge["currency"], status="succeeded")
        refund.update(charge=charge["id"], payment_intent=intent_id, reason=reason, metadata={})
        txn = self._add_balance_transaction(
            "refund", -amount, 0, charge["currency"], refund["id"], "REFUND FOR CHARGE"
        )
        refund["balance_transaction"] = txn["id"]
        _apply_metadata(refund, params)
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        charge["refunds"]["data"].insert(0, refund)
        charge["refunds"]["total_count"] += 1
        self._emit("charge.refunded", charge)
        return refund

    def _retrieve_refund(self, params: JSON, refund_id: str) -> JSON:
        return self._lookup(self.refunds, "refund", refund_id)

    # -- balance transactions and payouts --------------------------------------------------------------

    @staticmethod
    def _fee_detail(fee: int, currency: str) -> JSON:
        return {
            "amount": fee,
            "currency": currency,
            "description": "Stripe processing fees",
            "type": "stripe_fee",
        }

    def _add_balance_transaction(
        self,
        type: str,
        amount: int,
        fee: int,
        currency: str,
        source: str | None,
        description: str | None,
        created: int | None = None,
    ) -> JSON:
        category = {"charge": "charge", "refund": "refund", "payout": "payout", "stripe_fee": "fee"}
        txn = _new_object("balance_transaction", "txn", amount=amount, fee=fee, net=amount - fee)
        if created is not None:
            txn["created"] = created
        txn.update(currency=currency, description=description, exchange_rate=None, source=source, type=type)
        txn.update(available_on=txn["created"] + 2 * 86_400, status="pending")
        txn.update(reporting_category=category.get(type, "adjustment"))
        txn["fee_details"] = [self._fee_detail(fee, currency)] if fee else []
        self.balance_transactions[txn["id"]] = txn
        return txn

    def _charge_settled(self, charge: JSON, amount: int) -> None:
        fee = (amount * self.fee_bps + 5_000) // 10_000 + self.fee_fixed
        txn = self._add_balance_transaction("charge", amount, fee, charge["currency"], charge["id"], None)
        charge["balance_transaction"] = txn["id"]

    def _expanded(self, txn: JSON, expand: list[str]) -> JSON:
        txn = copy.deepcopy(txn)
        source = txn.get("source")
        if "data.source" in expand or "source" in expand:
            for store in (self.charges, self.refunds, self.payouts):
                if source in store:
                    txn["source"] = copy.deepcopy(store[source])
        return txn

    def _list_balance_transactions(self, params: JSON) -> JSON:
        _check_params(
            params,
            frozenset(
                {
                    "created",
                    "limit",
                    "starting_after",
                    "ending_before",
                    "type",
                    "payout",
                    "source",
                    "currency",
                    "expand",
                }
            ),
        )
        raw_limit = _string(params, "limit") or "10"
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            raise _invalid("Invalid integer: limit must be between 1 and 100", "limit")
        created = params.get("created") or {}
        if not isinstance(created, dict):
            created = {"eq": created}
        bounds = {op: int(value) for op, value in created.items()}
        checks = {
            "gte": lambda t, v: t >= v,
            "gt": lambda t, v: t > v,
            "lte": lambda t, v: t <= v,
            "lt": lambda t, v: t < v,
            "eq": lambda t, v: t == v,
        }
        rows = [
            t
            for t in reversed(list(self.balance_transactions.values()))
            if all(checks[op](t["created"], value) for op, value in bounds.items())
            and params.get("type") in (None, t["type"])
            and params.get("source") in (None, t["source"])
            and params.get("payout") in (None, self._paid_out.get(t["id"]))
            and params.get("currency") in (None, t["currency"])
        ]
        rows.sort(key=lambda t: -t["created"])
        after = _string(params, "starting_after")
        if after:
            ids = [t["id"] for t in rows]
            if after not in ids:
                raise _invalid(
                    f"No such balance_transaction: '{after}'", "starting_after", "resource_missing"
                )
            rows = rows[ids.index(after) + 1 :]
        page = rows[: int(raw_limit)]
        expand = params.get("expand") or []
        return {
            "object": "list",
            "data": [self._expanded(t, expand) for t in page],
            "has_more": len(rows) > len(page),
            "url": "/v1/balance_transactions",
        }

    def _retrieve_balance_transaction(self, params: JSON, txn_id: str) -> JSON:
        return self._expanded(
            self._lookup(self.balance_transactions, "balance_transaction", txn_id), params.get("expand") or []
        )

    def _create_payout(self, params: JSON) -> JSON:
        """Pay out every balance transaction not paid out yet (their net), like an automatic payout."""
        _check_params(params, frozenset({"currency", "description", "metadata"}))
        currency = (_string(params, "currency") or "vnd").lower()
        members = [
            t
            for t in self.balance_transactions.values()
            if t["id"] not in self._paid_out and t["type"] != "payout" and t["currency"] == currency
        ]
        amount = sum(t["net"] for t in members)
        if amount <= 0:
            raise _invalid(
                "Insufficient funds in Stripe account to create this payout.", code="balance_insufficient"
            )
        payout = _new_object("payout", "po", amount=amount, currency=currency, status="paid", automatic=True)
        payout.update(description=_string(params, "description"), metadata={})
        payout["arrival_date"] = payout["created"] + 86_400
        self.payouts[payout["id"]] = payout
        txn = self._add_balance_transaction("payout", -amount, 0, currency, payout["id"], "STRIPE PAYOUT")
        payout["balance_transaction"] = txn["id"]
        for member in members:
            self._paid_out[member["id"]] = payout["id"]
        return payout

    def _retrieve_payout(self, params: JSON, payout_id: str) -> JSON:
        return self._lookup(self.payouts, "payout", payout_id)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads, so stop() leaves none behind

    def __init__(self, fake: StripeFake) -> None:
        super().__init__(("127.0.0.1", 0), _RequestHandler)
        self.fake = fake


class _RequestHandler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _serve(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        headers = {name.lower(): value for name, value in self.headers.items()}
        fake, request_id = self.server.fake, _new_id("req")
        response, delay = fake._handle(self.command, self.path, body, headers, request_id)
        if delay:
            fake._stopping.wait(delay)
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.payload)))
            self.send_header("Request-Id", request_id)
            self.send_header("Stripe-Version", fake.api_version)
            if response.idempotency_key:
                self.send_header("Idempotency-Key", response.idempotency_key)
            if response.replayed:
                self.send_header("Idempotent-Replayed", "true")
            self.end_headers()
            self.wfile.write(response.payload)
        except ConnectionError:
            self.close_connection = True

    do_GET = do_POST = do_DELETE = _serve
