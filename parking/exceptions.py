"""Refusals of the parking domain, each named for its condition with an HTTP status and a stable code."""

from hanoipay.errors import Conflict, Forbidden, HanoiPayError, InvalidRequest, NotFound


class ZoneNotFound(NotFound):
    code = "zone_not_found"


class SpotNotFound(NotFound):
    code = "spot_not_found"


class QuoteNotFound(NotFound):
    code = "quote_not_found"


class SessionNotFound(NotFound):
    code = "parking_session_not_found"


class InvalidPlate(InvalidRequest):
    code = "invalid_plate"
    title = "Invalid licence plate"


class InvalidSearch(InvalidRequest):
    code = "invalid_search"
    title = "Invalid search"


class DurationOutOfRange(InvalidRequest):
    code = "duration_out_of_range"
    title = "Duration out of range"


class NoTariff(InvalidRequest):
    code = "no_tariff"
    title = "No tariff in force"


class InvalidTariffFile(InvalidRequest):
    code = "invalid_parking_data"
    title = "Invalid parking data"


class QuoteExpired(Conflict):
    code = "quote_expired"
    title = "Quote expired"


class QuoteUsed(Conflict):
    code = "quote_used"
    title = "Quote already used"


class SpotTaken(Conflict):
    code = "spot_taken"
    title = "Spot taken"


class SpotOutOfService(Conflict):
    code = "spot_out_of_service"
    title = "Spot out of service"


class PlateHasOpenSession(Conflict):
    code = "plate_has_open_session"
    title = "Plate already has an open session"


class SessionNotExtendable(Conflict):
    code = "session_not_extendable"
    title = "Session cannot be extended"


class SessionNotEndable(Conflict):
    code = "session_not_endable"
    title = "Session cannot be ended"


class SessionPaid(Conflict):
    code = "session_paid"
    title = "The plate has a paid session"


class ZoneNotOwned(Forbidden):
    code = "zone_not_owned"
    title = "Zone belongs to another operator"


class TariffVersionImmutable(Conflict):
    code = "tariff_version_immutable"
    title = "Tariff version cannot change"


class PaymentNotAuthorized(HanoiPayError):
    status = 402
    code = "payment_not_authorized"
    title = "Payment not authorized"
