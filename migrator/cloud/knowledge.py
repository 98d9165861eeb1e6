"""What a wave knows from Entra ID and Intune at preflight, read through Microsoft Graph in a few batched requests.

Theory of operation
-------------------
:func:`read_tenant` is given the devices of a wave (or a batch) as their preflight facts report them (the Entra
``deviceId`` dsregcmd shows, the SIDs of the users with a profile) and reads, once:

* the tenant-wide **Windows Hello for Business enrollment policy**: ``GET deviceManagement/
  deviceEnrollmentConfigurations`` (``DeviceManagementServiceConfig.Read.All``), every configuration listed whole
  (a handful) and the one whose ``@odata.type`` is ``#microsoft.graph.deviceEnrollmentWindowsHelloForBusiness
  Configuration`` kept (the default one, priority 0, when several are assigned). Intune applies it only when a
  device enrolls (MS docs, "Windows Hello for Business settings at enrollment"), so it says what a re-enrolled
  device would get, never what an enrolled one has now; and it has no cloud Kerberos trust setting: that comes
  from a configuration profile or a GPO (``UseCloudTrustForOnPremAuth``);
* the **Entra device objects**: ``GET devices?$filter=deviceId in ('a', 'b', ...)``, 15 ids per request (Graph's
  limit on ``in``), so O(devices / 15) requests rather than one per device; a ``deviceId`` no object answers for
  has none (deleted by an admin, or the device never registered), and ``accountEnabled`` false is a disabled one.
  Without an Entra device object there is no Primary Refresh Token, hence no cloud Kerberos ticket (MS docs,
  "Primary Refresh Token": the PRT is issued to a registered device);
* each distinct **user's Hello methods**: the Entra user found by SID (:meth:`GraphClient.user_by_sid`, one
  request) and ``users/{id}/authentication/windowsHelloForBusinessMethods`` (one more): a user with profiles on
  several devices of the wave is read once.

Nothing here raises for what the tenant answers: a part that cannot be read (no permission, throttling that
outlasted the retries, the tenant down) is recorded in :attr:`TenantKnowledge.failures` with Graph's message, the
other parts are still read, and :meth:`TenantKnowledge.finding` says per device what is known and what is not.
The findings are plain JSON-able data for the device's record and the report; :attr:`TenantKnowledge.requests`
counts the Graph requests sent.

:func:`preflight_wave` does it for a wave from what the store recorded: the latest facts of each of the wave's
devices give the queries, one :func:`read_tenant` reads them all, and each device's finding is appended to the
audit log (action ``entra-preflight``): append-only and hash-chained, so a later read adds a finding and never
replaces one, and a device whose Entra object is gone is a recorded finding, not an error. The report shows the
latest finding of each device ("Entra ID at preflight").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrator.errors import CloudError
from migrator.facts import DeviceFacts
from migrator.logs import get_logger
from migrator.store import AuditEntry, Store

if TYPE_CHECKING:  # the client (msal, httpx) is loaded by whoever builds one
    from migrator.cloud.client import GraphClient

AUDIT_ACTION = "entra-preflight"
HELLO_ENROLLMENT_TYPE = "#microsoft.graph.deviceEnrollmentWindowsHelloForBusinessConfiguration"
IN_BATCH = 15  # Graph's limit on the values of an OData ``in`` filter


@dataclass(frozen=True)
class DeviceQuery:
    """One device as its preflight facts report it."""

    name: str
    device_id: str | None  # the Entra deviceId dsregcmd shows (None: not Entra-registered as far as it says)
    user_sids: tuple[str, ...] = ()

    @classmethod
    def from_facts(cls, name: str, facts: DeviceFacts) -> DeviceQuery:
        return cls(name, facts.device_id, tuple(u.sid for u in facts.users))


@dataclass(frozen=True)
class EnrollmentHelloPolicy:
    """The tenant's Windows Hello for Business enrollment configuration, as Graph reports it."""

    id: str
    display_name: str
    state: str  # enabled, disabled, notConfigured
    security_device_required: bool
    pin_minimum_length: int | None
    pin_maximum_length: int | None
    unlock_with_biometrics: bool | None
    remote_passport: bool | None
    pin_characters: dict[str, str]  # uppercase/lowercase/special -> allowed, required, disallowed

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> EnrollmentHelloPolicy:
        return cls(
            id=str(item.get("id", "")),
            display_name=str(item.get("displayName", "")),
            state=str(item.get("state", "notConfigured")),
            security_device_required=bool(item.get("securityDeviceRequired", False)),
            pin_minimum_length=_int(item.get("pinMinimumLength")),
            pin_maximum_length=_int(item.get("pinMaximumLength")),
            unlock_with_biometrics=_bool(item.get("unlockWithBiometricsEnabled")),
            remote_passport=_bool(item.get("remotePassportEnabled")),
            pin_characters={
                kind: str(item[key])
                for kind, key in (
                    ("uppercase", "pinUppercaseCharactersUsage"),
                    ("lowercase", "pinLowercaseCharactersUsage"),
                    ("special", "pinSpecialCharactersUsage"),
                )
                if item.get(key) is not None
            },
        )

    def at_reenrollment(self) -> str:
        """What this policy gives a device that enrolls in Intune again (it is applied at enrollment only)."""
        if self.state == "disabled":
            return (
                "a re-enrolled device does not provision Windows Hello for Business at enrollment (the tenant "
                "disables it); only a configuration profile or a GPO can turn it on"
            )
        if self.state != "enabled":
            return (
                "not configured: a re-enrolled device gets no Hello setting at enrollment; its configuration "
                "profiles and GPOs decide"
            )
        tpm = "a TPM is required" if self.security_device_required else "a software key is allowed without a TPM"
        pin = f"PIN of {self.pin_minimum_length}-{self.pin_maximum_length} characters"
        rules = ", ".join(f"{kind} {usage}" for kind, usage in self.pin_characters.items())
        return (
            f"a re-enrolled device provisions Windows Hello for Business at enrollment ({tpm}; {pin}"
            f"{'; ' + rules if rules else ''}); the enrollment policy has no cloud Kerberos trust setting, so "
            "the trust comes from its configuration profile or GPO (UseCloudTrustForOnPremAuth)"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "state": self.state,
            "security_device_required": self.security_device_required,
            "pin_minimum_length": self.pin_minimum_length,
            "pin_maximum_length": self.pin_maximum_length,
            "pin_characters": dict(self.pin_characters),
            "unlock_with_biometrics": self.unlock_with_biometrics,
            "remote_passport": self.remote_passport,
            "at_reenrollment": self.at_reenrollment(),
        }


@dataclass
class TenantKnowledge:
    """What :func:`read_tenant` read, and what it could not (``failures``: part -> Graph's message)."""

    enrollment: EnrollmentHelloPolicy | None = None  # None: not configured in the tenant, or not read (failures)
    devices: dict[str, dict[str, Any]] = field(default_factory=dict)  # deviceId (casefolded) -> its Entra object
    devices_read: set[str] = field(default_factory=set)  # deviceIds asked about and answered (found or not)
    users: dict[str, dict[str, Any] | None] = field(default_factory=dict)  # SID -> Entra user (None: none)
    methods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # SID -> their Hello methods
    failures: dict[str, str] = field(default_factory=dict)  # "enrollment", "devices", "user <SID>" -> message
    requests: int = 0

    def device_state(self, device_id: str | None) -> str:
        """``present``, ``disabled``, ``missing`` (no object answers for the id), ``not_registered`` (the device
        reports no deviceId) or ``unknown`` (the read failed)."""
        if device_id is None:
            return "not_registered"
        key = device_id.casefold()
        if key not in self.devices_read:
            return "unknown"
        found = self.devices.get(key)
        if found is None:
            return "missing"
        return "present" if found.get("accountEnabled", True) else "disabled"

    def device_states(self) -> dict[str, str]:
        """deviceId (casefolded) → present, disabled or missing, for every id read (PathSettings.entra_devices)."""
        return {device_id: self.device_state(device_id) for device_id in sorted(self.devices_read)}

    def finding(self, query: DeviceQuery) -> dict[str, Any]:
        """The device's "Entra ID at preflight" record: its object, its users' Hello methods, the enrollment
        policy, and what could not be read."""
        state = self.device_state(query.device_id)
        found = self.devices.get((query.device_id or "").casefold())
        users: dict[str, Any] = {}
        for sid in query.user_sids:
            if f"user {sid}" in self.failures:
                users[sid] = {"read": False, "error": self.failures[f"user {sid}"]}
                continue
            entra_user = self.users.get(sid)
            users[sid] = {
                "read": True,
                "upn": entra_user.get("userPrincipalName") if entra_user else None,
                "hello_methods": [
                    {
                        "key_id": str(m.get("id", "")),
                        "created": m.get("createdDateTime"),
                        "device": m.get("displayName"),
                        "key_strength": m.get("keyStrength"),
                    }
                    for m in self.methods.get(sid, [])
                ],
            }
        return {
            "device_id": query.device_id,
            "device_object": state,
            "device_object_id": found.get("id") if found else None,
            "device_problem": _device_problem(state, query.device_id),
            "users": users,
            "enrollment_policy": self.enrollment.as_json() if self.enrollment else None,
            "failures": {k: v for k, v in self.failures.items() if not k.startswith("user ")},
        }


def _device_problem(state: str, device_id: str | None) -> str | None:
    if state == "missing":
        return (
            f"Entra ID has no device object with deviceId {device_id} (deleted by an admin?): without it the "
            "device gets no Primary Refresh Token, so no cloud Kerberos ticket; re-join the device (dsregcmd "
            "/leave, then join again) before migrating it"
        )
    if state == "disabled":
        return (
            f"the Entra device object {device_id} is disabled (accountEnabled false): its users get no Primary "
            "Refresh Token, so no cloud Kerberos ticket; enable it in Entra ID before migrating"
        )
    if state == "unknown":
        return "the Entra device object could not be read (see failures)"
    return None


def read_enrollment_policy(graph: GraphClient) -> EnrollmentHelloPolicy | None:
    """The tenant's Windows Hello for Business enrollment configuration (the lowest priority number wins when
    several are assigned; the default has priority 0 and applies to all users); None when the tenant has none."""
    found = [c for c in graph.enrollment_configurations() if c.get("@odata.type") == HELLO_ENROLLMENT_TYPE]
    if not found:
        return None
    default = min(found, key=lambda c: _int(c.get("priority")) or 0)
    return EnrollmentHelloPolicy.from_graph(default)


def read_tenant(graph: GraphClient, queries: Iterable[DeviceQuery]) -> TenantKnowledge:
    """Read once what preflight needs for these devices (see the module docstring); never raises a CloudError."""
    log = get_logger("cloud.knowledge")
    wanted = list(queries)
    knowledge = TenantKnowledge()
    sent = graph.requests
    try:
        knowledge.enrollment = read_enrollment_policy(graph)
    except CloudError as err:
        knowledge.failures["enrollment"] = err.detail
    device_ids = list(dict.fromkeys(q.device_id.casefold() for q in wanted if q.device_id))
    for batch in _batches(device_ids, IN_BATCH):
        try:
            for item in graph.entra_devices(batch):
                knowledge.devices[str(item.get("deviceId", "")).casefold()] = item
            knowledge.devices_read.update(batch)
        except CloudError as err:
            knowledge.failures["devices"] = err.detail
    for sid in dict.fromkeys(s for q in wanted for s in q.user_sids):
        try:
            user = graph.user_by_sid(sid)
            knowledge.users[sid] = user
            knowledge.methods[sid] = graph.hello_methods(str(user["id"])) if user else []
        except CloudError as err:
            knowledge.failures[f"user {sid}"] = err.detail
    knowledge.requests = graph.requests - sent
    if knowledge.failures:
        log.warning("Entra ID read in part at preflight", failures=knowledge.failures, requests=knowledge.requests)
    return knowledge


def _batches(items: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def wave_queries(store: Store, wave: str) -> list[DeviceQuery]:
    """The wave's devices as their latest recorded facts report them (devices without facts are left out: they
    have not been preflighted yet)."""
    queries = []
    for row in store.list_devices(wave=wave):
        snapshot = store.latest_facts(row.name)
        if snapshot is None:
            continue
        facts = snapshot.facts
        device_id = facts.get("device_id")
        users = facts.get("users")
        sids = tuple(
            str(u["sid"]) for u in (users if isinstance(users, list) else []) if isinstance(u, dict) and u.get("sid")
        )
        queries.append(DeviceQuery(row.name, str(device_id) if device_id else None, sids))
    return queries


def record_findings(
    store: Store,
    knowledge: TenantKnowledge,
    queries: Iterable[DeviceQuery],
    *,
    actor: str,
    change_ticket: str | None = None,
) -> None:
    """Each device's finding, appended to the audit log (module docstring)."""
    for query in queries:
        store.append_audit(
            AuditEntry(
                actor, AUDIT_ACTION, device=query.name, change_ticket=change_ticket, after=knowledge.finding(query)
            )
        )


def preflight_wave(
    store: Store, graph: GraphClient, wave: str, *, actor: str, change_ticket: str | None = None
) -> TenantKnowledge:
    """Read Entra ID once for the wave's preflighted devices and record each device's finding."""
    queries = wave_queries(store, wave)
    knowledge = read_tenant(graph, queries)
    record_findings(store, knowledge, queries, actor=actor, change_ticket=change_ticket)
    problems = {q.name: knowledge.device_state(q.device_id) for q in queries}
    flagged = {name: state for name, state in problems.items() if state not in ("present", "not_registered")}
    if flagged:
        get_logger("cloud.knowledge", wave=wave).warning("Entra device objects to look at", devices=flagged)
    return knowledge
