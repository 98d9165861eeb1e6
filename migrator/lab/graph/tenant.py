"""The lab tenant's directory and Intune service: what Graph reads and changes, without HTTP.

Theory of operation
-------------------
The tenant is derived from the fleet and keeps what only it knows in ``fleet.entra`` (saved with the fleet):

* **Users** are the fleet's users by UPN (one Entra user however many devices they have a profile on); their
  Windows Hello for Business methods are :class:`~migrator.lab.model.EntraHelloMethod` records. A provisioning on a
  device registers the new key (the lab's ``provisioned`` notification, as event 300 "registered with Azure AD");
  a container deletion leaves the old key registered (MS docs: deleting the container does not remove the key
  from Entra ID). A fleet no tenant has served yet starts with one method per container on its devices.
* **Devices** are the Entra device objects of the Entra-joined and hybrid-joined devices (``device_id`` set),
  unless an admin deleted the object (:meth:`GraphTenant.delete_device`).
* **Groups** are the three device groups the Windows Hello for Business profiles are assigned to
  (:data:`PROFILES`). At first start an Intune-enrolled device is put in the group whose profile gives the MDM
  policy it already has, so the first check-in changes nothing.
* **Intune**: an enrolled device checks in about every 8 virtual hours (MS docs, "Intune device check-in
  frequency"; when the tenant is built with ``check_ins``) and at once on ``syncDevice``; at a check-in it
  writes the PassportForWork CSP values of the profiles assigned to its groups into
  ``HKLM\\SOFTWARE\\Microsoft\\Policies\\PassportForWork\\<tenant>\\Device\\Policies``. Two profiles that set one
  setting differently are a conflict: Intune applies neither value and the device keeps what it had (MS docs,
  "Troubleshoot policies and profiles: conflicts").

Ids are stable: Entra object ids are UUIDv5 of the tenant and the object's name, so the same fleet gives the
same ids at every start.

Locking: the tenant's state is guarded by one lock; a device's registry by the device's own lock, never taken
while the tenant lock is held (the lab notifies provisioning with the device lock held).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from migrator.lab import policy as policy_mod
from migrator.lab.model import Device, EnrollmentHello, EntraHelloMethod, EntraState, Fleet, User
from migrator.lab.windows import Lab

CHECK_IN_SECONDS = 8 * 3600  # Intune's regular check-in, about every 8 hours
CHECK_IN_JITTER = 1800  # spread so a fleet does not check in at one instant

# The settings the Windows Hello for Business profiles set (PassportForWork CSP under ./Device/Vendor/MSFT/
# PassportForWork/{TenantId}/Policies): UsePassportForWork, UseCertificateForOnPremAuth, UseCloudTrustForOnPremAuth.
MANAGED_SETTINGS = (policy_mod.MDM_ENABLED, policy_mod.CERT_TRUST, policy_mod.CLOUD_TRUST)


@dataclass(frozen=True)
class Profile:
    """A Windows Hello for Business settings catalog profile and the one device group it is assigned to."""

    name: str
    trust: str  # key, cert, cloud: what a device that gets only this profile provisions
    group: str
    settings: tuple[tuple[str, int], ...]
    description: str


PROFILES: tuple[Profile, ...] = (
    Profile(
        "Windows Hello for Business - cloud Kerberos trust",
        "cloud",
        "Hello cloud Kerberos trust devices",
        ((policy_mod.MDM_ENABLED, 1), (policy_mod.CLOUD_TRUST, 1), (policy_mod.CERT_TRUST, 0)),
        "Use Windows Hello for Business with cloud Kerberos trust for on-premises authentication",
    ),
    Profile(
        "Windows Hello for Business - certificate trust",
        "cert",
        "Hello certificate trust devices",
        ((policy_mod.MDM_ENABLED, 1), (policy_mod.CERT_TRUST, 1)),
        "Use Windows Hello for Business with certificate trust for on-premises authentication",
    ),
    Profile(
        "Windows Hello for Business - key trust",
        "key",
        "Hello key trust devices",
        ((policy_mod.MDM_ENABLED, 1),),
        "Use Windows Hello for Business (key trust)",
    ),
)


class TenantError(Exception):
    """A request the tenant refuses as Graph would: ``status`` and Graph's error ``code``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def object_id_of_cloud_sid(sid: str) -> str | None:
    """The Entra object id a cloud-only account's SID (S-1-12-1-...) encodes; None for any other SID.

    Written here as the tenant's rule and again in :mod:`migrator.cloud.client` as the product reads it: the
    product never imports the lab, and each checks the other in the integration tests."""
    parts = sid.split("-")
    if parts[:4] != ["S", "1", "12", "1"] or len(parts) != 8:
        return None
    try:
        raw = b"".join(int(p).to_bytes(4, "little") for p in parts[4:])
    except (ValueError, OverflowError):
        return None
    return str(uuid.UUID(bytes_le=raw))


def normal_key_id(key_id: str) -> str:
    """An NgcKeyId ``{GUID}`` as the method's id: the GUID in lower case, without braces."""
    return key_id.strip().strip("{}").lower()


def apply_check_in(device: Device, tenant_id: str, settings: dict[str, int], conflicting: frozenset[str]) -> None:
    """What an Intune check-in writes on the device: the assigned values, the others removed (conflicting ones
    kept as they are: Intune applies neither value)."""
    key = policy_mod.mdm_device_key(tenant_id)
    with device.lock:
        for name in MANAGED_SETTINGS:
            if name in conflicting:
                continue
            if name in settings:
                device.registry.set_value(key, name, settings[name], "REG_DWORD")
            else:
                device.registry.delete_value(key, name)


class GraphTenant:
    """The tenant behind the lab's Graph endpoint (see the module docstring)."""

    def __init__(self, lab: Lab, *, check_ins: bool = True) -> None:
        """``check_ins``: enrolled devices check in on the lab's clock (the runtime leaves it off unless asked:
        a check-in overwrites local writes to the MDM policy key, as on Windows); ``syncDevice`` works either way."""
        self.lab = lab
        self.check_ins = check_ins
        self.fleet: Fleet = lab.fleet
        self.tenant_id = self.fleet.tenant.tenant_id
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://login.microsoftonline.com/{self.tenant_id}")
        self._lock = threading.RLock()
        self.syncs: list[tuple[str, datetime]] = []  # (device, virtual time) of each check-in, for tests
        if self.fleet.entra is None:
            self.fleet.entra = self._derived_state()
        self.state: EntraState = self.fleet.entra
        if self.state.enrollment_hello is None:
            self.state.enrollment_hello = self._derived_enrollment_hello()
        lab.on_change(self._on_lab_change)
        self._started = False
        # A lab in several processes (migrator.lab.shards) runs the device elsewhere: a check-in's writes are
        # made here (the tenant's copy) and handed to this with (device, settings, conflicting) for the device.
        self.forward_check_in: Callable[[str, dict[str, int], frozenset[str]], None] | None = None

    # ---- ids --------------------------------------------------------------------------------------------

    def object_id(self, kind: str, name: str) -> str:
        return str(uuid.uuid5(self._namespace, f"{kind}:{name.casefold()}"))

    def user_id(self, user: User) -> str:
        """The user's Entra object id: for a cloud-only account the one its SID encodes (S-1-12-1-a-b-c-d: the
        object id's 16 bytes as four little-endian 32-bit numbers), else a stable UUIDv5 of its UPN."""
        from_sid = object_id_of_cloud_sid(user.sid)
        return from_sid or self.object_id("user", user.upn)

    def group_id(self, name: str) -> str:
        return self.object_id("group", name)

    def device_object_id(self, device: Device) -> str:
        return self.object_id("device", device.device_id or device.name)

    def managed_device_id(self, device: Device) -> str:
        return self.object_id("managedDevice", device.name)

    def profile_id(self, profile: Profile) -> str:
        return self.object_id("configurationPolicy", profile.name)

    # ---- the first start ----------------------------------------------------------------------------------

    def _derived_state(self) -> EntraState:
        state = EntraState()
        for device in self.fleet.devices:
            for user in device.users:
                if user.container is not None and device.azure_ad_joined:
                    state.hello_methods.append(self._method(device, user))
        for profile in PROFILES:
            state.group_members[profile.group] = []
        for device in self.fleet.devices:
            if not device.mdm_enrolled or device.device_id is None:
                continue
            trust = self._mdm_trust(device)
            for profile in PROFILES:
                if profile.trust == trust:
                    state.group_members[profile.group].append(device.name)
        return state

    def _derived_enrollment_hello(self) -> EnrollmentHello:
        """A tenant that enrolls devices in Intune has Hello enabled at enrollment (Intune's long-standing default
        for tenants that use it); TPM is required when every Intune-enrolled device has one. A fleet without Intune
        leaves the policy not configured."""
        enrolled = [d for d in self.fleet.devices if d.mdm_enrolled]
        if not enrolled:
            return EnrollmentHello()
        return EnrollmentHello(state="enabled", security_device_required=all(d.tpm.present for d in enrolled))

    def enrollment_hello(self) -> EnrollmentHello:
        assert self.state.enrollment_hello is not None
        return self.state.enrollment_hello

    def set_enrollment_hello(self, policy: EnrollmentHello) -> None:
        """An admin changes the tenant's Windows Hello for Business enrollment policy."""
        with self._lock:
            self.state.enrollment_hello = policy

    def _mdm_trust(self, device: Device) -> str:
        values = policy_mod.evaluate(device.registry, self.tenant_id).mdm
        if not values.get(policy_mod.MDM_ENABLED):
            return "none"
        if values.get(policy_mod.CERT_TRUST):
            return "cert"
        return "cloud" if values.get(policy_mod.CLOUD_TRUST) else "key"

    @staticmethod
    def _method(device: Device, user: User) -> EntraHelloMethod:
        assert user.container is not None
        return EntraHelloMethod(
            id=normal_key_id(user.container.key_id),
            user_upn=user.upn,
            device_name=device.name,
            created=user.container.created,
        )

    def _on_lab_change(self, what: str, device: Device) -> None:
        if what != "provisioned" or not device.azure_ad_joined:
            return
        with self._lock:
            known = {m.id for m in self.state.hello_methods}
            for user in device.users:
                if user.container is not None and normal_key_id(user.container.key_id) not in known:
                    self.state.hello_methods.append(self._method(device, user))

    # ---- Intune check-ins on the lab's clock -----------------------------------------------------------------

    def start(self) -> None:
        """Schedule every enrolled device's regular check-in (idempotent; nothing without ``check_ins``)."""
        if self._started or not self.check_ins:
            return
        self._started = True
        for device in self.fleet.devices:
            if device.mdm_enrolled:
                self._schedule_check_in(device.name, self.lab.rng.uniform(0, CHECK_IN_SECONDS))

    def _schedule_check_in(self, device_name: str, delay: float) -> None:
        def check_in() -> None:
            device = self.fleet.device(device_name)
            if device is None or not device.mdm_enrolled:
                return
            self.check_in(device)
            self._schedule_check_in(device_name, CHECK_IN_SECONDS + self.lab.rng.uniform(-1, 1) * CHECK_IN_JITTER)

        self.lab.clock.call_later(delay, check_in)

    def assigned_settings(self, device: Device) -> tuple[dict[str, int], frozenset[str]]:
        """The PassportForWork values the profiles assigned to the device's groups give, and the settings two of
        them set differently (conflicts: applied by neither)."""
        with self._lock:
            profiles = [p for p in PROFILES if device.name in self.state.group_members.get(p.group, [])]
        values: dict[str, int] = {}
        conflicting: set[str] = set()
        for profile in profiles:
            for name, value in profile.settings:
                if name in values and values[name] != value:
                    conflicting.add(name)
                values[name] = value
        return {k: v for k, v in values.items() if k not in conflicting}, frozenset(conflicting)

    def check_in(self, device: Device) -> None:
        """An Intune check-in: the assigned profiles' values are written, the others removed."""
        settings, conflicting = self.assigned_settings(device)
        apply_check_in(device, self.tenant_id, settings, conflicting)
        if self.forward_check_in is not None:
            self.forward_check_in(device.name, settings, conflicting)
        now = self.lab.clock.now()
        with self._lock:
            self.state.last_mdm_sync[device.name] = now
            self.syncs.append((device.name, now))

    # ---- lookups ------------------------------------------------------------------------------------------

    def users_by_upn(self) -> dict[str, User]:
        found: dict[str, User] = {}
        for device in self.fleet.devices:
            for user in device.users:
                if device.azure_ad_joined:
                    found.setdefault(user.upn.casefold(), user)
        return found

    def find_user(self, id_or_upn: str) -> User:
        """A user by object id or UPN (Graph accepts either in ``/users/{id | userPrincipalName}``)."""
        wanted = id_or_upn.casefold()
        for upn, user in self.users_by_upn().items():
            if wanted in (upn, self.user_id(user)):
                return user
        raise TenantError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{id_or_upn}' does not exist or one of its queried reference-property objects are not present.",
        )

    def users_where(self, field: str, value: str) -> list[User]:
        """``$filter=<field> eq '<value>'`` on ``onPremisesSecurityIdentifier`` or ``userPrincipalName``."""
        wanted = value.casefold()
        found = []
        for user in self.users_by_upn().values():
            on_prem = None if object_id_of_cloud_sid(user.sid) else user.sid
            have = on_prem if field == "onPremisesSecurityIdentifier" else user.upn
            if have is not None and have.casefold() == wanted:
                found.append(user)
        return found

    def hello_methods(self, user: User) -> list[EntraHelloMethod]:
        with self._lock:
            return [m for m in self.state.hello_methods if m.user_upn.casefold() == user.upn.casefold()]

    def hello_method(self, user: User, method_id: str) -> EntraHelloMethod:
        for method in self.hello_methods(user):
            if method.id == method_id.casefold():
                return method
        raise TenantError(404, "itemNotFound", f"The requested authentication method '{method_id}' was not found.")

    def delete_hello_method(self, user: User, method_id: str) -> None:
        with self._lock:
            method = self.hello_method(user, method_id)
            self.state.hello_methods.remove(method)

    def entra_devices(self) -> list[Device]:
        deleted = set(self.state.deleted_devices)
        return [d for d in self.fleet.devices if d.azure_ad_joined and d.device_id and d.name not in deleted]

    def find_entra_device(self, object_id: str) -> Device:
        for device in self.entra_devices():
            if object_id.casefold() == self.device_object_id(device):
                return device
        raise TenantError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
        )

    def device_named(self, name: str) -> Device | None:
        return next((d for d in self.entra_devices() if d.name == name), None)

    def delete_device(self, name: str) -> None:
        """An admin deletes the device's Entra object (the device itself keeps running)."""
        with self._lock:
            if name not in self.state.deleted_devices:
                self.state.deleted_devices.append(name)
            for members in self.state.group_members.values():
                if name in members:
                    members.remove(name)

    def disable_device(self, name: str) -> None:
        """An admin disables the device's Entra object (accountEnabled false): it stays, and its users get no
        PRT on it (MS docs, "Manage device identities: disable a device")."""
        with self._lock:
            if name not in self.state.disabled_devices:
                self.state.disabled_devices.append(name)

    def device_enabled(self, device: Device) -> bool:
        with self._lock:
            return device.name not in self.state.disabled_devices

    def managed_devices(self) -> list[Device]:
        return [d for d in self.fleet.devices if d.mdm_enrolled]

    def find_managed_device(self, managed_id: str) -> Device:
        for device in self.managed_devices():
            if managed_id.casefold() == self.managed_device_id(device):
                return device
        raise TenantError(404, "ResourceNotFound", f"The managed device '{managed_id}' was not found.")

    def find_group(self, group_id: str) -> str:
        for profile in PROFILES:
            if group_id.casefold() == self.group_id(profile.group):
                return profile.group
        raise TenantError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{group_id}' does not exist or one of its queried reference-property objects are not present.",
        )

    def members(self, group: str) -> list[Device]:
        with self._lock:
            names = list(self.state.group_members.get(group, []))
        return [d for d in (self.device_named(n) for n in names) if d is not None]

    def add_member(self, group: str, object_id: str) -> None:
        device = self.find_entra_device(object_id)
        with self._lock:
            members = self.state.group_members.setdefault(group, [])
            if device.name in members:
                raise TenantError(
                    400,
                    "Request_BadRequest",
                    "One or more added object references already exist for the following modified "
                    "properties: 'members'.",
                )
            members.append(device.name)

    def remove_member(self, group: str, object_id: str) -> None:
        with self._lock:
            members = self.state.group_members.setdefault(group, [])
            for name in members:
                device = self.device_named(name)
                if device is not None and self.device_object_id(device) == object_id.casefold():
                    members.remove(name)
                    return
        raise TenantError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not present.",
        )

    def profiles(self) -> Iterator[Profile]:
        return iter(PROFILES)

    def find_profile(self, profile_id: str) -> Profile:
        for profile in PROFILES:
            if profile_id.casefold() == self.profile_id(profile):
                return profile
        raise TenantError(404, "ResourceNotFound", f"The configuration policy '{profile_id}' was not found.")
