"""Refusals of the tickets domain, each named for its condition with a stable code."""

from hanoipay.errors import Conflict, HanoiPayError, InvalidRequest, NotFound, Unauthorized


class InvalidFeed(InvalidRequest):
    code = "invalid_feed"
    title = "Invalid GTFS feed"


class NoActiveFeed(Conflict):
    code = "no_active_feed"
    title = "No transit feed imported"


class CardNotFound(NotFound):
    code = "card_not_found"


class DeviceNotFound(NotFound):
    code = "device_not_found"


class ProductNotFound(NotFound):
    code = "product_not_found"


class ValidatorNotFound(NotFound):
    code = "validator_not_found"


class UnknownCategory(InvalidRequest):
    code = "unknown_rider_category"
    title = "Unknown rider category"


class InvalidDeviceKey(InvalidRequest):
    code = "invalid_device_key"
    title = "Invalid device key"


class DeviceKeyTaken(Conflict):
    code = "device_key_taken"
    title = "Device key already registered"


class CardRevoked(Conflict):
    code = "card_revoked"
    title = "Card revoked"


class DeviceRevoked(Conflict):
    code = "device_revoked"
    title = "Device revoked"


class NotAPass(InvalidRequest):
    code = "not_a_pass"
    title = "Not a pass"


class NoDebt(Conflict):
    code = "no_debt"
    title = "Nothing owed"


class CodeNotCurrent(InvalidRequest):
    code = "code_not_current"
    title = "Code not current"


class InvalidValidatorCredentials(Unauthorized):
    code = "invalid_validator_credentials"
    title = "Invalid validator credentials"


class IssuerKeysMissing(HanoiPayError):
    status = 503
    code = "issuer_keys_missing"
    title = "Issuer keys not configured"


class UnknownRoute(InvalidRequest):
    code = "unknown_route"
    title = "Unknown route"


class UnknownStop(InvalidRequest):
    code = "unknown_stop"
    title = "Unknown stop"
