"""Small system tools: ``gpupdate``, ``hostname`` (``whoami`` is :mod:`.whoami`).

gpupdate texts: ``reference/outputs/gpupdate_force_success.txt``; the failure wording is what Windows prints
when no domain controller answers (Group Policy event 1129's text), followed by the GPRESULT hint.
"""

from __future__ import annotations

from migrator.lab.native._common import NativeContext, text
from migrator.lab.shell import NativeResult

NO_DC = (
    "The processing of Group Policy failed because of lack of network connectivity to a domain controller. "
    "This may be a transient condition. A success message would be generated once the machine gets connected to "
    "the domain controller and Group Policy has successfully processed. If you do not see a success message for "
    "several hours, then contact your administrator."
)
DIAGNOSE = (
    "To diagnose the failure, review the event log or run GPRESULT /H GPReport.html from the command line to "
    "access information about Group Policy results."
)
GPUPDATE_OPTIONS = ("/force", "/wait:", "/logoff", "/boot", "/sync", "/target:")


def gpupdate(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``gpupdate [/target:{computer|user}] [/force] [/wait:n] ...``: refresh Group Policy from a DC."""
    options = [a.casefold() for a in args]
    if "/?" in options or any(not o.startswith(GPUPDATE_OPTIONS) for o in options):
        usage = ["Description: Updates multiple Group Policy settings.", ""]
        usage += ["Syntax: Gpupdate [/Target:{Computer | User}] [/Force] [/Wait:<value>] [/Logoff] [/Boot] [/Sync]"]
        return NativeResult(stdout=text(usage), exit_code=0 if options == ["/?"] else 1)
    target = next((o.partition(":")[2] for o in options if o.startswith("/target:")), "")
    if target not in ("", "computer", "user"):
        return NativeResult(
            stdout=text(["Invalid Syntax. The value of /Target must be Computer or User."]), exit_code=1
        )
    computer = target in ("", "computer")
    user = target in ("", "user")
    ok = ctx.lab.gpupdate(ctx.device, computer=computer, users=user)
    lines = ["Updating policy...", ""]
    if ok:
        if computer:
            lines.append("Computer Policy update has completed successfully.")
        if user:
            lines.append("User Policy update has completed successfully.")
        lines.append("")
        return NativeResult(stdout=text(lines))
    if computer:
        lines += ["Computer policy could not be updated successfully. The following errors were encountered:", ""]
        lines.append(NO_DC)
    if user:
        lines += ["User Policy could not be updated successfully. The following errors were encountered:", ""]
        lines.append(NO_DC)
    lines += ["", DIAGNOSE, ""]
    return NativeResult(stdout=text(lines), exit_code=1)


def hostname(ctx: NativeContext, args: list[str]) -> NativeResult:
    if args:
        return NativeResult(
            stderr=text(["sethostname: Use the Network Control Panel Applet to set hostname."]), exit_code=1
        )
    return NativeResult(stdout=text([ctx.device.name]))


def chcp(ctx: NativeContext, args: list[str]) -> NativeResult:
    """``chcp [nnn]``: the console code page (437 on en-US; Ansible's bootstrap sets 65001). The lab keeps no
    console, so the page set is only echoed back, as chcp prints it."""
    if not args:
        return NativeResult(stdout=text(["Active code page: 437"]))
    if len(args) == 1 and args[0].isdigit():
        return NativeResult(stdout=text([f"Active code page: {int(args[0])}"]))
    return NativeResult(stderr=text(["Parameter format not correct - " + args[0]]), exit_code=1)
