"""Tests of parse_nltest_dsgetdc on the published nltest samples."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from migrator.parse import parse_nltest_dsgetdc
from tests.parse._samples import sample


def test_success_from_msdocs() -> None:
    """The docs success listing (no alignment spaces) gives every field and the flag list."""
    result = parse_nltest_dsgetdc(sample("nltest_dsgetdc_success_msdocs.txt"))
    assert result.dc == "<Server_Name>"
    assert result.address == "<IP_Address>"
    assert result.dom_guid == "<GUID>"
    assert result.dom_name == "<Domain_Name>"
    assert result.forest_name == "<Domain_Name.com>"
    assert result.dc_site_name == "Default-First-Site-Name"
    assert result.our_site_name == "Default-First-Site-Name"
    assert result.flags == ("PDC", "GC", "DS", "LDAP", "KDC", "TIMESERV", "WRITABLE", "DNS_FOREST", "CLOSE_SITE")
    assert result.completed_successfully is True
    assert result.succeeded is True
    assert result.failure is None
    assert result.unknown_fields == {} and result.unknown_lines == ()


def test_success_with_console_alignment() -> None:
    """The console's right-aligned form (leading spaces before each label) parses the same."""
    text = """           DC: \\\\dc01.contoso.com
      Address: \\\\10.0.0.4
     Dom Guid: 5d6e2b4e-8f4a-4a4e-9c1c-2b9f3d3e7f10
     Dom Name: contoso.com
  Forest Name: contoso.com
 Dc Site Name: HQ
Our Site Name: Branch
        Flags: GC DS LDAP KDC TIMESERV GTIMESERV WRITABLE DNS_DC DNS_DOMAIN DNS_FOREST FULL_SECRET WS DS_8
The command completed successfully
"""
    result = parse_nltest_dsgetdc(text)
    assert result.dc == "dc01.contoso.com"
    assert result.address == "10.0.0.4"
    assert result.dc_site_name == "HQ" and result.our_site_name == "Branch"
    assert "CLOSE_SITE" not in result.flags and "WRITABLE" in result.flags
    assert result.succeeded


def test_failure_1355_variants() -> None:
    """Each failure line reads as status 1355 / 0x54b / ERROR_NO_SUCH_DOMAIN; the site failure as 1919."""
    result = parse_nltest_dsgetdc(sample("nltest_dsgetdc_failure_1355_variants.txt"))
    assert result.succeeded is False
    assert result.dc is None
    assert len(result.failures) == 3
    first = result.failures[0]
    assert first.operation == "DC name"
    assert first.status.value == 1355
    assert first.status.hex == "0x54b"
    assert first.status.name == "ERROR_NO_SUCH_DOMAIN"
    site = result.failures[2]
    assert site.operation == "DC Site"
    assert (site.status.value, site.status.hex, site.status.name) == (1919, "0x77f", "ERROR_NO_SITENAME")


def test_unknown_status_keeps_printed_name() -> None:
    """A status not in our table keeps the symbolic name nltest printed."""
    result = parse_nltest_dsgetdc("Getting DC name failed: Status = 1212 0x4bc ERROR_INVALID_DOMAINNAME")
    assert result.failure is not None
    assert result.failure.status.value == 1212
    assert result.failure.status.name == "ERROR_INVALID_DOMAINNAME"


def test_sc_verify_output_is_not_a_dc_lookup() -> None:
    """``/sc_verify`` output has no DC line: nothing located, its lines kept as unknown, prompt ignored."""
    result = parse_nltest_dsgetdc(sample("nltest_sc_verify_success_msdocs.txt"))
    assert result.dc is None
    assert not result.succeeded
    assert result.failures == ()
    assert result.unknown_fields == {}
    assert "Trust Verification Status = 0 0x0 NERR_Success" in result.unknown_lines


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_never_raises(text: str) -> None:
    """Any text at all parses without an exception."""
    parse_nltest_dsgetdc(text)
