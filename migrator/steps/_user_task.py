"""Reading what a user-context run (``user_context.ps1`` or the at-logon task) wrote."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from migrator.facts import DeleteGuard, DeleteOutcome, HelloState, TaskStatus
from migrator.parse import parse_certutil_delete, parse_dsregcmd, parse_klist, parse_klist_cloud_debug
from migrator.steps._base import as_dict, as_list, native_text, opt_int, opt_str

_STATUSES: tuple[TaskStatus, ...] = ("completed", "timeout", "not-started", "register-failed")
CLOUD_KRBTGT = "krbtgt/kerberos.microsoftonline.com"


def status_of(data: Mapping[str, Any]) -> TaskStatus:
    value = str(data.get("status") or "")
    for status in _STATUSES:
        if value == status:
            return status
    return "timeout"


def cleaned(data: Mapping[str, Any]) -> bool:
    flags = as_dict(data.get("cleaned_up"))
    return bool(flags.get("task")) and bool(flags.get("files"))


def read_hello_state(user: str, data: Mapping[str, Any]) -> HelloState:
    inner = as_dict(data.get("result"))
    dsreg_text, _ = native_text(inner.get("dsregcmd"))
    klist_text, _ = native_text(inner.get("klist"))
    debug_text, _ = native_text(inner.get("klist_cloud_debug"))
    status = parse_dsregcmd(dsreg_text) if dsreg_text else None
    klist = parse_klist(klist_text) if klist_text else None
    debug = parse_klist_cloud_debug(debug_text) if debug_text else None
    servers = [(t.server or "").casefold() for t in (klist.tickets if klist else ())]
    return HelloState(
        status=status_of(data),
        user=user,
        ran_as=opt_str(inner.get("user")),
        ran_as_sid=opt_str(inner.get("sid")),
        exit_code=opt_int(data.get("last_task_result")),
        ngc_set=status.ngc_set if status else None,
        ngc_key_id=status.ngc_key_id if status else None,
        azure_ad_prt=status.azure_ad_prt if status else None,
        on_prem_tgt=status.on_prem_tgt if status else None,
        cloud_tgt=status.cloud_tgt if status else None,
        cert_enrollment=status.cert_enrollment if status else None,
        cloud_primary_tgt=debug.cloud_primary_tgt_available if debug else None,
        krbtgt_cloud_ticket=CLOUD_KRBTGT in servers,
        onprem_krbtgt_ticket=any(s.startswith("krbtgt/") and s != CLOUD_KRBTGT for s in servers),
        cleaned_up=cleaned(data),
        message=opt_str(data.get("message")),
        group_sids=tuple(str(g) for g in as_list(inner.get("groups")) if isinstance(g, str)),
    )


def read_delete(
    user: str,
    status: TaskStatus,
    inner: Mapping[str, Any],
    *,
    exit_code: int | None,
    cleaned_up: bool,
    message: str | None,
) -> DeleteOutcome:
    raw_guard = as_dict(inner.get("guard"))
    guard = None
    if raw_guard:
        guard = DeleteGuard(
            ngc_set=bool(raw_guard.get("ngc_set")),
            key_id=opt_str(raw_guard.get("key_id")),
            expected_key_id=opt_str(raw_guard.get("expected_key_id")),
            expected_trust=opt_str(raw_guard.get("expected_trust")),
            observed_trust=opt_str(raw_guard.get("observed_trust")),
            cert_store_read=bool(raw_guard.get("cert_store_read")),
            refusals=tuple(str(r) for r in as_list(raw_guard.get("refusals"))),
        )
    certutil_text, _ = native_text(inner.get("certutil"))
    certutil = parse_certutil_delete(certutil_text) if certutil_text else None
    error = None
    if certutil is not None and certutil.succeeded is False:
        error = certutil.error_name or (f"0x{certutil.hresult.value:08x}" if certutil.hresult else None)
    return DeleteOutcome(
        status=status,
        user=user,
        ran_as=opt_str(inner.get("user")),
        deleted=inner.get("deleted") is True,
        refused=bool(guard and guard.refusals),
        guard=guard,
        certutil_succeeded=certutil.succeeded if certutil else None,
        certutil_error=error,
        sign_out_required=bool(certutil and certutil.sign_out_required),
        exit_code=exit_code,
        cleaned_up=cleaned_up,
        message=message,
    )
