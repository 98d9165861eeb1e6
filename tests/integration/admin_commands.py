"""The commands an admin types on a device during a Hello for Business → cloud Kerberos trust migration, and how
Windows answers each (issue 11: at least 40, each answered as Windows would or with the lab's explicit
"not modelled" refusal). ``test_admin_commands.py`` runs every one through unmodified pywinrm (``cmd``) or pypsrp
(``ps``) against the lab, as the WinRM admin on an Entra hybrid joined device.

Expectations:

- ``windows``: answered as Windows answers it: the exit code (cmd) or no error (ps), and the output matching
  ``pattern`` (a regular expression searched in stdout+stderr, or in the PowerShell output's text);
- ``refused``: Windows has it; the lab says "… is not modelled by the lab (lab/…)" (exit code 0x4C41 for cmd, the
  NotModelledByLab error for ps);
- ``missing``: Windows has no such command either ("is not recognized", 9009 / CommandNotFoundException).

``{name}``, ``{domain}`` and ``{dc}`` are replaced with the device's name, AD domain and DC.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class AdminCommand:
    transport: Literal["cmd", "ps"]
    command: str
    expect: Literal["windows", "refused", "missing"]
    pattern: str = ""
    exit_code: int = 0


COMMANDS: tuple[AdminCommand, ...] = (
    # -- who and where am I (cmd) --
    AdminCommand("cmd", "hostname", "windows", r"^{name}\r\n$"),
    AdminCommand("cmd", "whoami", "windows", r"^lab\\migrator-admin\r\n$"),
    AdminCommand("cmd", "whoami /user", "windows", r"USER INFORMATION\r\n-{16}"),
    AdminCommand("cmd", "whoami /groups", "windows", r"BUILTIN\\Administrators +Alias +S-1-5-32-544"),
    AdminCommand("cmd", "whoami /priv", "windows", r"SeDebugPrivilege +Debug programs +Enabled"),
    AdminCommand("cmd", "whoami /all", "windows", r"USER CLAIMS INFORMATION"),
    AdminCommand("cmd", "whoami /fqdn", "refused"),
    AdminCommand("cmd", "ver", "windows", r"^\r\nMicrosoft Windows \[Version 10\.0\.\d+\.\d+\]\r\n$"),
    AdminCommand("cmd", "set COMPUTERNAME", "windows", r"^COMPUTERNAME={name}\r\n$"),
    AdminCommand("cmd", "set", "windows", r"(?m)^USERDOMAIN=LAB\r$"),
    AdminCommand("cmd", "echo %USERNAME%", "windows", r"^migrator-admin\r\n$"),
    AdminCommand("cmd", "dir C:\\", "windows", r" Directory of C:\\\r\n[\s\S]*<DIR> +Users"),
    AdminCommand("cmd", "chcp", "windows", r"^Active code page: 437\r\n$"),
    # -- network and domain (cmd) --
    AdminCommand("cmd", "ipconfig", "windows", r"Windows IP Configuration"),
    AdminCommand("cmd", "ipconfig /all", "windows", r"Primary Dns Suffix  \. \. \. \. \. \. \. : {domain}"),
    AdminCommand("cmd", "ipconfig /renew", "refused"),
    AdminCommand("cmd", "nltest /dsgetdc:{domain}", "windows", r"DC: \\\\"),
    AdminCommand("cmd", "nltest /sc_verify:{domain}", "windows", r"NERR_Success"),
    AdminCommand("cmd", "ping {dc}", "refused"),
    AdminCommand("cmd", "nslookup {dc}", "refused"),
    AdminCommand("cmd", "netsh advfirewall show allprofiles", "refused"),
    # -- Hello, Kerberos, policy (cmd) --
    AdminCommand("cmd", "dsregcmd /status", "windows", r"\| Device State +\|[\s\S]*DomainJoined : YES"),
    AdminCommand("cmd", "klist", "windows", r"0xc000005f", -1073741729),
    AdminCommand("cmd", "certutil -store my", "windows", r"CertUtil: -store command completed successfully\."),
    AdminCommand("cmd", "certutil -user -store my", "windows", r"^My \"Personal\"\r\nCertUtil: -store command"),
    AdminCommand("cmd", "certutil -store root", "refused"),
    AdminCommand("cmd", "certutil -deletehellocontainer", "windows", r"FAILED: 0x80090010", -2146893808),
    AdminCommand("cmd", "gpupdate /force", "windows", r"Computer Policy update has completed successfully\."),
    AdminCommand("cmd", "gpresult /r", "refused"),
    AdminCommand(
        "cmd",
        'reg query "HKLM\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion" /v CurrentBuild',
        "windows",
        r"^\r\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\Windows NT\\CurrentVersion\r\n"
        r"    CurrentBuild    REG_SZ    \d+\r\n",
    ),
    AdminCommand(
        "cmd", "reg query HKLM\\SOFTWARE\\Lab\\Nothing", "windows", r"unable to find the specified registry key", 1
    ),
    AdminCommand("cmd", "reg add HKLM\\SOFTWARE\\Lab /v x /d 1 /f", "refused"),
    # -- sessions and tasks (cmd) --
    AdminCommand("cmd", "quser", "windows", r"USERNAME +SESSIONNAME +ID +STATE +IDLE TIME +LOGON TIME"),
    AdminCommand("cmd", "schtasks /query /tn \\Microsoft\\Windows\\Workplace Join\\Automatic-Device-Join", "refused"),
    AdminCommand("cmd", "schtasks /run /tn \\lab", "refused"),
    AdminCommand("cmd", "tasklist", "refused"),
    AdminCommand("cmd", "sc query winrm", "refused"),
    AdminCommand("cmd", "systeminfo", "refused"),
    AdminCommand("cmd", "net localgroup administrators", "refused"),
    AdminCommand("cmd", "wmic os get caption", "refused"),
    AdminCommand("cmd", "frobnicate /now", "missing"),
    AdminCommand("cmd", 'powershell -NoProfile -Command "Get-Service WinRM"', "windows", r"Running  WinRM"),
    # -- PowerShell (pypsrp) --
    AdminCommand("ps", "$PSVersionTable.PSVersion.Major", "windows", r"^5$"),
    AdminCommand("ps", "$env:COMPUTERNAME", "windows", r"^{name}$"),
    AdminCommand("ps", "$Host.Name", "windows", r"^ServerRemoteHost$"),
    AdminCommand("ps", "(Get-CimInstance Win32_OperatingSystem).Caption", "windows", r"^Microsoft Windows 1[01] "),
    AdminCommand("ps", "(Get-CimInstance Win32_ComputerSystem).Domain", "windows", r"^{domain}$"),
    AdminCommand("ps", "Test-Path HKLM:\\SOFTWARE\\Policies\\Microsoft", "windows", r"^True$"),
    AdminCommand(
        "ps", "(Get-ChildItem Registry::HKEY_USERS).PSChildName -join ','", "windows", r"^\.DEFAULT,S-1-5-18,"
    ),
    AdminCommand("ps", "@(Get-ChildItem Cert:\\LocalMachine\\My).Count", "windows", r"^1$"),
    AdminCommand("ps", "@(Get-ChildItem Cert:\\CurrentUser\\My).Count", "windows", r"^0$"),
    AdminCommand("ps", "Get-ChildItem Cert:\\LocalMachine\\Root", "refused"),
    AdminCommand("ps", "(Get-Service WinRM).Status", "windows", r"^Running$"),
    AdminCommand("ps", "Get-Service", "refused"),
    AdminCommand("ps", "Test-ComputerSecureChannel", "windows", r"^True$"),
    AdminCommand("ps", "Get-ScheduledTask -TaskPath '\\Microsoft\\Windows\\Workplace Join\\'", "refused"),
    AdminCommand("ps", "Get-ScheduledTask", "refused"),
    AdminCommand("ps", "(Get-Date).Year -ge 2024", "windows", r"^True$"),
    AdminCommand("ps", "ipconfig /all | Out-String", "windows", r"Ethernet adapter Ethernet:"),
    AdminCommand("ps", "whoami /groups | Out-String", "windows", r"GROUP INFORMATION"),
    AdminCommand("ps", "[System.Text.UTF8Encoding]::new($false).WebName", "windows", r"^utf-8$"),
    AdminCommand("ps", "[PowerShell]::Create()", "refused"),
    AdminCommand("ps", "Get-NetAdapter", "refused"),
    AdminCommand("ps", "@(Get-Process explorer).Count -ge 1", "windows", r"^True$"),
    AdminCommand("ps", "Get-LocalGroup", "refused"),
    AdminCommand("ps", "Get-HotFix", "refused"),
    AdminCommand("ps", "New-Module -ScriptBlock {}", "refused"),
    AdminCommand("ps", "Restart-Computer -Force", "refused"),
    AdminCommand("ps", "Frob-Nicate", "missing"),
)
