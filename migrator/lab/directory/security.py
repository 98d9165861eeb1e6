"""Security descriptors the lab's directory hands out: the one on a Group Policy container, in binary form.

Security filtering of a GPO is who holds the "Apply Group Policy" extended right
(``edacfd8f-ffb3-11d1-b41d-00a0c968f939``) on its groupPolicyContainer (MS docs "Security filtering using
GPMC"). The lab writes that as AD does, in ``nTSecurityDescriptor``: a self-relative SECURITY_DESCRIPTOR
([MS-DTYP] 2.4.6) whose DACL ([MS-DTYP] 2.4.5) grants Domain Admins and SYSTEM full control, Authenticated Users
read (MS16-072: computers must be able to read every GPO), and the filter group read plus an
ACCESS_ALLOWED_OBJECT_ACE ([MS-DTYP] 2.4.4.3) for the Apply Group Policy right. :func:`apply_groups` reads the
filter back from those bytes, so a descriptor is the one truth about who a GPO applies to.
"""

from __future__ import annotations

import struct
import uuid

from migrator.lab.directory.dit import sid_from_bytes, sid_to_bytes

APPLY_GROUP_POLICY = uuid.UUID("edacfd8f-ffb3-11d1-b41d-00a0c968f939")
_SE_DACL_PRESENT = 0x0004
_SE_SELF_RELATIVE = 0x8000
_ACCESS_ALLOWED = 0x00
_ACCESS_ALLOWED_OBJECT = 0x05
_ACE_OBJECT_TYPE_PRESENT = 0x1
_FULL_CONTROL = 0x000F01FF
_READ = 0x00020094  # READ_CONTROL | LIST_CHILDREN | READ_PROPERTY | LIST_OBJECT
_CONTROL_ACCESS = 0x00000100  # ADS_RIGHT_DS_CONTROL_ACCESS
AUTHENTICATED_USERS = "S-1-5-11"
SYSTEM = "S-1-5-18"


def _ace(ace_type: int, mask: int, sid: bytes, object_type: uuid.UUID | None = None) -> bytes:
    body = struct.pack("<I", mask)
    if object_type is not None:
        body += struct.pack("<I", _ACE_OBJECT_TYPE_PRESENT) + object_type.bytes_le
    body += sid
    return struct.pack("<BBH", ace_type, 0, 4 + len(body)) + body


def group_policy_descriptor(domain_sid: str, filter_group_sid: bytes, group_rid_admins: int = 512) -> bytes:
    """The descriptor of a GPO filtered to one group (see the module docstring)."""
    admins = sid_to_bytes(f"{domain_sid}-{group_rid_admins}")
    aces = [
        _ace(_ACCESS_ALLOWED, _FULL_CONTROL, admins),
        _ace(_ACCESS_ALLOWED, _FULL_CONTROL, sid_to_bytes(SYSTEM)),
        _ace(_ACCESS_ALLOWED, _READ, sid_to_bytes(AUTHENTICATED_USERS)),
        _ace(_ACCESS_ALLOWED, _READ, filter_group_sid),
        _ace(_ACCESS_ALLOWED_OBJECT, _CONTROL_ACCESS, filter_group_sid, APPLY_GROUP_POLICY),
    ]
    acl_body = b"".join(aces)
    dacl = struct.pack("<BBHHH", 4, 0, 8 + len(acl_body), len(aces), 0) + acl_body
    owner = group = admins
    header_size = 20
    owner_offset = header_size
    group_offset = owner_offset + len(owner)
    dacl_offset = group_offset + len(group)
    header = struct.pack(
        "<BBHIIII", 1, 0, _SE_DACL_PRESENT | _SE_SELF_RELATIVE, owner_offset, group_offset, 0, dacl_offset
    )
    return header + owner + group + dacl


def apply_groups(descriptor: bytes) -> list[str]:
    """SIDs holding the Apply Group Policy right in a self-relative descriptor's DACL."""
    dacl_offset = struct.unpack_from("<I", descriptor, 16)[0]
    if not dacl_offset:
        return []
    _, _, _, count, _ = struct.unpack_from("<BBHHH", descriptor, dacl_offset)
    position = dacl_offset + 8
    sids: list[str] = []
    for _ in range(count):
        ace_type, _, size = struct.unpack_from("<BBH", descriptor, position)
        if ace_type == _ACCESS_ALLOWED_OBJECT:
            mask, flags = struct.unpack_from("<II", descriptor, position + 4)
            if flags & _ACE_OBJECT_TYPE_PRESENT and mask & _CONTROL_ACCESS:
                object_type = uuid.UUID(bytes_le=descriptor[position + 12 : position + 28])
                if object_type == APPLY_GROUP_POLICY:
                    offset = position + 28 + (16 if flags & 0x2 else 0)
                    sids.append(sid_from_bytes(descriptor[offset : position + size]))
        position += size
    return sids
