"""``certutil``: ``-DeleteHelloContainer`` (the *caller's* Windows Hello container) and ``[-user] -store My``.

Modelled verbs: ``-DeleteHelloContainer``; ``-store [-user] My [CertId]`` over the stores of
:mod:`migrator.lab.cmdlets.certs` (the machine store by default, the caller's with ``-user``). Every other real
verb (``certutil -v -?`` lists them) and every other store is refused as not modelled by the lab; only a verb
certutil lacks gets its unknown-argument answer.
Texts: ``reference/outputs/certutil_deletehellocontainer_*.txt``, ``certutil_help_deletehellocontainer.txt``
and ``tests/lab/outputs/certutil_store_my.txt``. certutil's exit code is the HRESULT of the failure as a signed
32-bit int (0 on success).
"""

from __future__ import annotations

from migrator.lab import boundary
from migrator.lab.cmdlets import certs
from migrator.lab.native._common import NativeContext, short_date_time, signed32, text
from migrator.lab.shell import NativeResult

E_INVALIDARG = 0x80070057
# HRESULT → (symbolic name, the message certutil prints on its second line).
_FAILURES: dict[int, tuple[str, str]] = {
    0x80090010: ("NTE_PERM", "Access denied."),
    0x80090016: ("NTE_BAD_KEYSET", "Keyset does not exist"),
}
# certutil's options (``certutil -?``, "Options:") and verbs (``certutil -v -?``; learn.microsoft.com
# windows-server/administration/windows-commands/certutil), lower-cased, without the dash.
OPTIONS = frozenset(
    """
    nullsign f enterprise user gmt seconds silent split v privatekey pin urlfetch config policyserver
    anonymous kerberos clientcertificate username cert dc restrict out p protectto csp t symkeyalg
    weakpdf sid sslpolicy service
    """.split()  # noqa: SIM905 - a word list reads better than 120 quoted strings
)
VERBS = frozenset(
    """
    dump dumppfx asn decodehex decode encode deny resubmit setattributes setextension revoke isvalid
    getconfig getconfig2 getconfig3 ping pingadmin cainfo ca.cert ca.chain getcrl crl shutdown
    installcert renewcert schema view db deleterow backup backupdb backupkey restore restoredb
    restorekey importpfx dynamicfilelist databaselocations hashfile store enumstore addstore delstore
    verifystore repairstore viewstore viewdelstore dspublish adtemplate template templatecas catemplates
    setcasites enrollmentserverurl adca ca policy policycache credstore installdefaulttemplates urlcache
    pulse machineinfo dcinfo entinfo tcainfo scinfo scroots deletehellocontainer verifykeys verify
    verifyctl syncwithwu generatesstfromwu generatepinrulesctl downloadocsp generatehpkpheader
    flushcache addecccurve delecccurve viewecccurve oid error getreg setreg delreg importkms exportpfx
    mergepfx convertepf add-chain add-pre-chain get-sth sign vroot vocsproot addenrollmentserver
    deleteenrollmentserver addpolicyserver deletepolicyserver class 7f oid csplist csptest cngkeyinfo
    key delkey
    """.split()  # noqa: SIM905 - a word list reads better than 120 quoted strings
)
VERB_HELP = [
    "  -DeleteHelloContainer -- Delete Hello Logon container.  ",
    "     ** Users need to sign out after using this option for it to complete. **",
]


def run(ctx: NativeContext, args: list[str]) -> NativeResult:
    switches = [a for a in args if a[:1] in "-/"]
    verbs = [a for a in switches if a[1:].casefold() not in OPTIONS]
    if not verbs and switches:
        return _not_modelled(f"certutil {' '.join(switches)}")
    if not verbs or verbs[0][1:].casefold() in ("?", "help"):
        return NativeResult(stdout=_usage(), exit_code=0 if verbs else signed32(E_INVALIDARG))
    verb = verbs[0][1:].casefold()
    options = [a[1:].casefold() for a in switches if a[1:].casefold() in OPTIONS]
    if verb == "store":
        if any(o != "user" for o in options) or any(a[1:] == "?" for a in verbs[1:]):
            return _not_modelled(f"certutil {' '.join(switches)}")
        return _store(ctx, [a for a in args if a[:1] not in "-/"], user="user" in options)
    if verb in VERBS and verb != "deletehellocontainer":
        return _not_modelled(f"certutil {verbs[0]}")
    if verb != "deletehellocontainer":
        return NativeResult(
            stdout=text([f"CertUtil: Unknown arg: {verbs[0]}", ""]) + _usage(),
            exit_code=signed32(E_INVALIDARG),
        )
    if any(a[1:] in ("?",) for a in verbs[1:]):
        return NativeResult(
            stdout=text(["Usage:", "  CertUtil [Options] -DeleteHelloContainer", *VERB_HELP, ""]),
        )
    outcome = ctx.lab.delete_hello_container(ctx.device, ctx.principal)
    if outcome.deleted:
        return NativeResult(
            stdout=text(
                [
                    "Sign out now to complete this task.",
                    "CertUtil: -DeleteHelloContainer command completed successfully.",
                ]
            )
        )
    name, message = _FAILURES.get(outcome.hresult, (outcome.reason or "E_FAIL", "Unspecified error"))
    code = signed32(outcome.hresult)
    return NativeResult(
        stdout=text(
            [
                f"CertUtil: -DeleteHelloContainer command FAILED: 0x{outcome.hresult & 0xFFFFFFFF:08x} ({code} {name})",
                f"CertUtil: {message}",
            ]
        ),
        exit_code=code,
    )


def _not_modelled(what: str) -> NativeResult:
    return NativeResult(
        stderr=text([boundary.native_refusal(what, "lab/native/certutil")]), exit_code=boundary.EXIT_CODE
    )


def _store(ctx: NativeContext, names: list[str], user: bool) -> NativeResult:
    """``certutil [-user] -store My [CertId]``: the store's certificates in certutil's dump layout."""
    store = names[0] if names else "CA"  # certutil's default store is CA
    location = "CurrentUser" if user else "LocalMachine"
    try:
        found = certs.store_certificates(ctx.lab, ctx.device, ctx.principal, location, store)
    except boundary.NotModelledByLab:
        return _not_modelled(f"certutil -store {store} ({location})")
    if len(names) > 2:
        return _not_modelled("certutil -store with an output file")
    if len(names) == 2:
        wanted = names[1].replace(" ", "").casefold()
        found = [
            cert
            for index, cert in enumerate(found)
            if wanted in (str(index), cert.thumbprint.casefold(), cert.serial_number.casefold())
        ]
        if not found:
            return NativeResult(
                stdout=text(
                    [
                        'My "Personal"',
                        "CertUtil: -store command FAILED: 0x80092004 (-2146885628 CRYPT_E_NOT_FOUND)",
                        "CertUtil: Cannot find object or property.",
                    ]
                ),
                exit_code=signed32(0x80092004),
            )
    lines = ['My "Personal"']
    for index, cert in enumerate(found):
        lines += [
            f"================ Certificate {index} ================",
            f"Serial Number: {cert.serial_number}",
            f"Issuer: {cert.issuer}",
            f" NotBefore: {short_date_time(cert.not_before)}",
            f" NotAfter: {short_date_time(cert.not_after)}",
            f"Subject: {cert.subject}",
            "Non-root Certificate",
        ]
        if cert.template:
            lines.append(f"Template: {cert.template}")
        lines += [
            f"Cert Hash(sha1): {cert.thumbprint.lower()}",
            f"  Key Container = {cert.key_container}",
            f"  Provider = {cert.key_provider}",
            "Private key is NOT exportable" if cert.has_private_key else "Missing stored keyset",
        ]
        # The private key test line ("Encryption test passed", or a failure for a Passport key that needs the
        # user's gesture) is not printed: the lab does not model what the key provider would answer.
    lines.append("CertUtil: -store command completed successfully.")
    return NativeResult(stdout=text(lines))


def _usage() -> str:
    return text(
        [
            "Verbs:",
            "  -DeleteHelloContainer -- Delete Hello Logon container.  ",
            "     ** Users need to sign out after using this option for it to complete. **",
            "",
            "CertUtil -?              -- Display a list of verbs (commands)",
            'CertUtil -<verb> -?      -- Display help text for the "<verb>" verb',
            "CertUtil -v -?           -- Display all help text for all verbs",
            "",
        ]
    )
