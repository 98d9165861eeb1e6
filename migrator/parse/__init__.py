"""Parsers of native Windows output: pure functions from text to typed, frozen facts.

Every parser takes the text a tool printed (as saved, copied or relayed: see :mod:`migrator.parse._text`),
never raises on odd input, and keeps what it cannot read in ``unknown_fields`` / ``unknown_lines`` rather
than failing. :mod:`migrator.parse.explain` turns the facts into a migration verdict.
"""

from __future__ import annotations

from migrator.parse._text import decode_output
from migrator.parse.certutil import CertutilResult, parse_certutil_delete
from migrator.parse.codes import StatusCode, describe_code
from migrator.parse.dsregcmd import DsregSection, DsregStatus, JoinType, parse_dsregcmd
from migrator.parse.events import ProvisioningEvent, parse_provisioning_event, parse_provisioning_events
from migrator.parse.gpupdate import GpupdateResult, parse_gpupdate
from migrator.parse.klist import (
    KlistApiError,
    KlistCloudDebug,
    KlistFailure,
    KlistResult,
    KlistTicket,
    parse_klist,
    parse_klist_cloud_debug,
)
from migrator.parse.nltest import NltestDsGetDc, NltestFailure, parse_nltest_dsgetdc
from migrator.parse.quser import QuserError, QuserResult, QuserSession, parse_quser

__all__ = [
    "CertutilResult",
    "DsregSection",
    "DsregStatus",
    "GpupdateResult",
    "JoinType",
    "KlistApiError",
    "KlistCloudDebug",
    "KlistFailure",
    "KlistResult",
    "KlistTicket",
    "NltestDsGetDc",
    "NltestFailure",
    "ProvisioningEvent",
    "QuserError",
    "QuserResult",
    "QuserSession",
    "StatusCode",
    "decode_output",
    "describe_code",
    "parse_certutil_delete",
    "parse_dsregcmd",
    "parse_gpupdate",
    "parse_klist",
    "parse_klist_cloud_debug",
    "parse_nltest_dsgetdc",
    "parse_provisioning_event",
    "parse_provisioning_events",
    "parse_quser",
]
