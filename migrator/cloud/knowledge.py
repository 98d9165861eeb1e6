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

:class:`EntraPreflight` is what a wave run keeps (:func:`migrator.engine.service.wave_entra` builds it): at the
wave's start it reads, as above, the devices whose facts are recorded, and finds the devices first seen by this
wave by name (``GET devices?$filter=displayName in (...)``, 15 names per request: their deviceId is not known
before the first probe). Then, at each visit, :meth:`EntraPreflight.device` is handed the device's fresh facts
before the machine decides its eligibility: whatever was not read yet (a deviceId no read answered for, a user
not read) is read then, once per device and run, and the device's finding recorded. A read that fails leaves the
device object ``unknown``: the device goes on with a warning, it is never taken for deleted. Each finding carries
``graph_requests``, the requests spent on that device (a wave-start read's share, split evenly over the devices
it served); the requests of a name lookup are recorded as one ``graph-requests`` audit entry split over its
devices (:mod:`migrator.cloud.spend` adds them up for the report).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from migrator.errors import CloudError
from migrator.facts import DeviceFacts
from migrator.logs import get_logger
from migrator.store import AuditEntry, Store

if TYPE_CHECKING:  # the client (msal, httpx) is loaded by whoever builds one
    from migrator.cloud.client import GraphClient

AUDIT_ACTION = "entra-preflight"
SPEND_ACTION = "graph-requests"  # Graph requests of one change or read, split evenly over ``devices`` (spend.py)
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
    devices_failed: set[str] = field(default_factory=set)  # deviceIds whose read failed (unknown, not missing)
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
        """deviceId (casefolded) → present, disabled or missing for every id read, unknown for every id whose read
        failed (PathSettings.entra_devices)."""
        asked = self.devices_read | self.devices_failed
        return {device_id: self.device_state(device_id) for device_id in sorted(asked)}

    def merge(self, other: TenantKnowledge) -> None:
        """Add what ``other`` (a later, smaller read) learnt; a later answer replaces an earlier failure."""
        self.devices.update(other.devices)
        self.devices_read |= other.devices_read
        self.devices_failed = (self.devices_failed | other.devices_failed) - self.devices_read
        self.users.update(other.users)
        self.methods.update(other.methods)
        for sid in other.users:
            self.failures.pop(f"user {sid}", None)
        self.failures.update(other.failures)
        if not self.devices_failed:
            self.failures.pop("devices", None)
        if other.enrollment is not None:
            self.enrollment = other.enrollment
        self.requests += other.requests

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
            # What could not be read about this device (another device's failed read is not its concern).
            "failures": {
                k: v for k, v in self.failures.items() if k == "enrollment" or (k == "devices" and state == "unknown")
            },
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
    wanted = list(queries)
    knowledge = TenantKnowledge()
    sent = graph.requests
    try:
        knowledge.enrollment = read_enrollment_policy(graph)
    except CloudError as err:
        knowledge.failures["enrollment"] = err.detail
    read_devices(graph, knowledge, [q.device_id for q in wanted if q.device_id])
    read_users(graph, knowledge, [s for q in wanted for s in q.user_sids])
    knowledge.requests = graph.requests - sent
    _warn_failures(knowledge)
    return knowledge


def read_devices(graph: GraphClient, knowledge: TenantKnowledge, device_ids: Iterable[str]) -> None:
    """The Entra device objects of ``device_ids``, 15 per request, into ``knowledge`` (a failed batch: unknown)."""
    for batch in _batches(list(dict.fromkeys(d.casefold() for d in device_ids)), IN_BATCH):
        try:
            for item in graph.entra_devices(batch):
                knowledge.devices[str(item.get("deviceId", "")).casefold()] = item
            knowledge.devices_read.update(batch)
            knowledge.devices_failed.difference_update(batch)
        except CloudError as err:
            knowledge.failures["devices"] = err.detail
            knowledge.devices_failed.update(batch)


def read_device_names(graph: GraphClient, knowledge: TenantKnowledge, names: Iterable[str]) -> None:
    """The Entra device objects named like ``names`` (devices not probed yet: no deviceId known), 15 names per
    request; each object found is known by its deviceId from then on. A name no object answers for says nothing
    (Entra ID may know the device by another name): its deviceId is read when its facts give it. An inventory's
    FQDN is looked up by its host name, the name Windows registers its Entra device object under."""
    for batch in _batches(list(dict.fromkeys(n.split(".", 1)[0] for n in names if n)), IN_BATCH):
        try:
            for item in graph.entra_devices_by_names(batch):
                device_id = str(item.get("deviceId", "")).casefold()
                if device_id:
                    knowledge.devices[device_id] = item
                    knowledge.devices_read.add(device_id)
                    knowledge.devices_failed.discard(device_id)
        except CloudError as err:  # the deviceIds are read at the devices' visits instead
            knowledge.failures["device names"] = err.detail


def read_users(graph: GraphClient, knowledge: TenantKnowledge, sids: Iterable[str]) -> None:
    """Each distinct user's Entra object (by SID) and Hello methods, into ``knowledge``."""
    for sid in dict.fromkeys(sids):
        try:
            user = graph.user_by_sid(sid)
            knowledge.users[sid] = user
            knowledge.methods[sid] = graph.hello_methods(str(user["id"])) if user else []
            knowledge.failures.pop(f"user {sid}", None)
        except CloudError as err:
            knowledge.failures[f"user {sid}"] = err.detail


def _warn_failures(knowledge: TenantKnowledge, **where: str) -> None:
    if knowledge.failures:
        get_logger("cloud.knowledge", **where).warning(
            "Entra ID read in part at preflight", failures=knowledge.failures, requests=knowledge.requests
        )


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
    graph_requests: float | Mapping[str, float] | None = None,
) -> None:
    """Each device's finding, appended to the audit log (module docstring); ``graph_requests``: the requests spent
    on each device (one share for all, or per device name; None: the read's requests split evenly)."""
    wanted = list(queries)
    if graph_requests is None:
        graph_requests = knowledge.requests / len(wanted) if wanted else 0.0
    for query in wanted:
        spent = graph_requests.get(query.name, 0.0) if isinstance(graph_requests, Mapping) else graph_requests
        finding = {**knowledge.finding(query), "graph_requests": round(spent, 3)}
        store.append_audit(
            AuditEntry(actor, AUDIT_ACTION, device=query.name, change_ticket=change_ticket, after=finding)
        )


def record_spend(
    store: Store,
    purpose: str,
    requests: int,
    devices: Sequence[str],
    *,
    actor: str,
    change_ticket: str | None = None,
) -> None:
    """One ``graph-requests`` audit entry: ``requests`` Graph requests sent for ``purpose`` (entra-cleanup,
    intune-group, entra-names), to be split evenly over ``devices`` (nothing recorded for no request or device)."""
    if requests <= 0 or not devices:
        return
    store.append_audit(
        AuditEntry(
            actor,
            SPEND_ACTION,
            device=devices[0] if len(devices) == 1 else None,
            change_ticket=change_ticket,
            after={"purpose": purpose, "requests": requests, "devices": list(devices)},
        )
    )


def preflight_wave(
    store: Store, graph: GraphClient, wave: str, *, actor: str, change_ticket: str | None = None
) -> TenantKnowledge:
    """Read Entra ID once for the wave's preflighted devices and record each device's finding."""
    queries = wave_queries(store, wave)
    knowledge = read_tenant(graph, queries)
    record_findings(store, knowledge, queries, actor=actor, change_ticket=change_ticket)
    _warn_flagged(knowledge, queries, wave)
    return knowledge


def _warn_flagged(knowledge: TenantKnowledge, queries: Iterable[DeviceQuery], wave: str) -> None:
    problems = {q.name: knowledge.device_state(q.device_id) for q in queries}
    flagged = {name: state for name, state in problems.items() if state not in ("present", "not_registered")}
    if flagged:
        get_logger("cloud.knowledge", wave=wave).warning("Entra device objects to look at", devices=flagged)


class EntraPreflight:
    """What one run of a wave knows of Entra ID: read at its start (:meth:`start`), completed at each device's
    first visit (:meth:`device`, the visits' ``entra`` hook); thread-safe (visits run in a pool)."""

    def __init__(
        self, store: Store, graph: GraphClient, wave: str, *, actor: str, change_ticket: str | None = None
    ) -> None:
        self.store = store
        self.graph = graph
        self.wave = wave
        self.actor = actor
        self.change_ticket = change_ticket
        self.knowledge = TenantKnowledge()
        self._recorded: set[str] = set()  # devices (casefolded) with a finding from this run
        self._looked_up: set[str] = set()  # devices (casefolded) whose visit already looked Entra ID up
        self._lock = threading.Lock()

    def start(self, devices: Sequence[str]) -> None:
        """The wave-start reads (module docstring): the recorded devices by deviceId and their users, the others
        by name; each recorded device's finding, with its share of the requests."""
        queries = wave_queries(self.store, self.wave)
        recorded = {q.name.casefold() for q in queries}
        first_seen = [d for d in devices if d.casefold() not in recorded]
        with self.graph.counting() as by_id:
            knowledge = read_tenant(self.graph, queries)
        with self.graph.counting() as by_name:
            read_device_names(self.graph, knowledge, first_seen)
        knowledge.requests = by_id.requests + by_name.requests
        record_findings(
            self.store,
            knowledge,
            queries,
            actor=self.actor,
            change_ticket=self.change_ticket,
            graph_requests=by_id.requests / len(queries) if queries else 0.0,
        )
        # The names' requests (and, with no recorded device, the enrollment policy's) go to the new devices.
        unshared = by_name.requests + (0 if queries else by_id.requests)
        record_spend(
            self.store, "entra-names", unshared, first_seen, actor=self.actor, change_ticket=self.change_ticket
        )
        _warn_flagged(knowledge, queries, self.wave)
        with self._lock:
            self.knowledge.merge(knowledge)
            self._recorded |= recorded

    def states(self) -> dict[str, str]:
        """deviceId (casefolded) → its object's state as known now (PathSettings.entra_devices)."""
        with self._lock:
            return self.knowledge.device_states()

    def device(self, name: str, facts: DeviceFacts) -> dict[str, str]:
        """The visit's hook, given the device's fresh facts before the machine decides its eligibility: reads what
        is not known yet about it (once per device and run) and records its finding; the states known then.
        Never raises for what Graph answers (a failed read leaves the object ``unknown``)."""
        query = DeviceQuery.from_facts(name, facts)
        key = name.casefold()
        with self._lock:
            if key in self._looked_up:
                return self.knowledge.device_states()
            self._looked_up.add(key)
            device_id = (query.device_id or "").casefold()
            unknown_id = [query.device_id] if device_id and device_id not in self.knowledge.devices_read else []
            unread = [s for s in query.user_sids if s not in self.knowledge.users]
            needs_finding = key not in self._recorded
        if not unknown_id and not unread and not needs_finding:
            return self.states()
        part = TenantKnowledge()
        with self.graph.counting() as counted:
            read_devices(self.graph, part, [d for d in unknown_id if d])
            read_users(self.graph, part, unread)
        part.requests = counted.requests
        with self._lock:
            self.knowledge.merge(part)
            finding_of = _copy(self.knowledge)
            self._recorded.add(key)
        _warn_failures(part, wave=self.wave, device=name)
        record_findings(
            self.store,
            finding_of,
            [query],
            actor=self.actor,
            change_ticket=self.change_ticket,
            graph_requests=float(counted.requests),
        )
        return self.states()


def _copy(knowledge: TenantKnowledge) -> TenantKnowledge:
    """A snapshot to build a finding from outside the lock (the finding reads these maps)."""
    return TenantKnowledge(
        enrollment=knowledge.enrollment,
        devices=dict(knowledge.devices),
        devices_read=set(knowledge.devices_read),
        devices_failed=set(knowledge.devices_failed),
        users=dict(knowledge.users),
        methods={sid: list(m) for sid, m in knowledge.methods.items()},
        failures=dict(knowledge.failures),
        requests=knowledge.requests,
    )
