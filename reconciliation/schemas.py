"""Request and response models of the finance API."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from hanoipay.validation import is_storable
from reconciliation.rules import RulesIn


def _storable(value: str) -> str:
    """Refuse text PostgreSQL cannot store: NUL and lone surrogates."""
    if not is_storable(value):
        raise ValueError("must not contain NUL or unpaired surrogate characters")
    return value


Note = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(_storable)]
ProviderName = Literal["stripe", "vietqr"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunCreate(Strict):
    """Reconcile a provider's business day (Asia/Ho_Chi_Minh)."""

    provider: ProviderName
    business_day: date
    dry_run: bool = False
    rules: RulesIn | None = None
    parallelism: int = Field(default=2, ge=1, le=16, description="How many workers share the run")


class ProgressOut(BaseModel):
    percent: int
    chunks_done: int
    chunks_total: int
    counts: dict[str, int]


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["reconciliation_run"] = "reconciliation_run"
    provider: str
    business_day: date
    status: str
    trigger: str
    requested_by: str
    rules: dict[str, Any]
    parallelism: int
    provider_lines: int
    ledger_items: int
    summary: dict[str, Any] | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progress: ProgressOut | None = None


class RunList(BaseModel):
    object: Literal["list"] = "list"
    data: list[RunOut]
    has_more: bool
    next_cursor: str | None


class DryRunOut(BaseModel):
    provider: str
    business_day: date
    dry_run: Literal[True] = True
    provider_lines: int
    ledger_items: int
    summary: dict[str, Any]
    exceptions: list[dict[str, Any]]


class StatementOut(BaseModel):
    id: str
    object: Literal["statement_file"] = "statement_file"
    provider: str
    format: str
    filename: str
    sha256: str
    size: int
    lines: int
    first_day: date | None
    last_day: date | None
    uploaded_by: str
    created_at: datetime
    duplicate: bool = False
    new_lines: int = 0


class StatementList(BaseModel):
    object: Literal["list"] = "list"
    data: list[StatementOut]
    has_more: bool
    next_cursor: str | None


class ResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    result: str
    rule: str
    kind: str
    provider_line_id: int | None
    ledger_item_id: int | None
    ledger_entry_id: str | None
    ledger_object: str | None
    provider_amount: int | None
    ledger_amount: int | None
    drift: int
    provider_fee: int | None
    expected_fee: int | None
    provider_currency: str | None
    ledger_currency: str | None
    provider_at: datetime | None
    ledger_at: datetime | None
    reason: str
    case_id: str | None


class ResultList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ResultOut]
    has_more: bool
    next_cursor: str | None


class ProviderLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    provider: str
    external_id: str
    source: str
    file_id: str | None
    kind: str
    ref: str | None
    hint: str | None
    group_ref: str | None
    members: list[str] | None
    amount: int
    fee: int
    currency: str
    occurred_at: datetime
    business_day: date
    description: str


class CaseEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    actor_id: str
    action: str
    note: str | None
    data: dict[str, Any]
    at: datetime


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    object: Literal["reconciliation_case"] = "reconciliation_case"
    provider: str
    business_day: date
    result: str
    kind: str
    reason: str
    status: str
    provider_line_id: int | None
    ledger_entry_id: str | None
    ledger_object: str | None
    provider_amount: int | None
    ledger_amount: int | None
    currency: str
    first_run_id: str
    last_run_id: str
    assignee_id: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    resolution: str | None
    resolution_note: str | None
    resolution_entry_id: str | None
    resolution_object: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CaseDetail(CaseOut):
    provider_line: ProviderLineOut | None = None
    ledger_entry: dict[str, Any] | None = None
    events: list[CaseEventOut] = []


class CaseList(BaseModel):
    object: Literal["list"] = "list"
    data: list[CaseOut]
    has_more: bool
    next_cursor: str | None


class CaseAssign(Strict):
    assignee_id: str = Field(min_length=1, max_length=40)
    note: Note | None = None


class CaseNote(Strict):
    note: Note | None = None


class CaseComment(Strict):
    note: Note


class CaseResolve(Strict):
    """How finance resolves a case, and why (kept in the trail)."""

    resolution: Literal["write_off", "manual_match", "refund"]
    note: Note


class CloseProviderOut(BaseModel):
    provider: str
    latest_run: dict[str, str] | None
    completed_run_id: str | None
    reconciled: bool
    matched: int
    exceptions: int
    open_cases: int
    open_amount: int


class DailyCloseOut(BaseModel):
    business_day: date
    closed: bool
    providers: list[CloseProviderOut]
