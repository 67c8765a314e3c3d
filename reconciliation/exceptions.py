"""Reconciliation's refusals, each named for its condition with a stable code."""

from hanoipay.errors import Conflict, InvalidRequest, NotFound


class RunNotFound(NotFound):
    code = "run_not_found"


class CaseNotFound(NotFound):
    code = "case_not_found"


class RunInProgress(Conflict):
    code = "run_in_progress"
    title = "A run of this day is already in progress"


class CaseResolved(Conflict):
    code = "case_resolved"
    title = "Case already resolved"


class ResolutionNotApplicable(InvalidRequest):
    code = "resolution_not_applicable"
    title = "Resolution does not apply to this case"


class MalformedStatement(InvalidRequest):
    code = "malformed_statement"
    title = "Malformed statement file"


class UnsupportedStatementCurrency(InvalidRequest):
    code = "unsupported_currency"
    title = "Unsupported currency"


class StatementTooLarge(InvalidRequest):
    code = "statement_too_large"
    title = "Statement file too large"


class BusinessDayOutOfRange(InvalidRequest):
    code = "business_day_out_of_range"
    title = "Business day out of range"
