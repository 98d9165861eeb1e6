"""Names that exist on a Windows 10/11 client, kept as data: the lab's "not recognized" versus "not modelled".

A name in these lists that the lab does not model is refused with :class:`migrator.lab.boundary.NotModelledByLab`;
only a name in none of them gets Windows' "is not recognized" answer (architecture rule 8).

Sources:

- ``SYSTEM32_EXECUTABLES``: the command-line tools of ``C:\\Windows\\System32`` on Windows 10 22H2 / 11 23H2 as
  listed by the Windows commands reference (learn.microsoft.com/windows-server/administration/windows-commands/
  windows-commands, the A-Z index, client tools only) plus in-box programs admins start from a prompt
  (``notepad``, ``mmc``, ``regedit``...).
- ``CMD_BUILTINS``: the internal commands of cmd.exe (``help`` in cmd.exe; "cmd" page of the same reference):
  they have no .exe and exist only inside cmd.
- ``INBOX_CMDLETS``: cmdlets and functions of the modules shipped with Windows PowerShell 5.1 on Windows 10/11
  (``Get-Command -Module Microsoft.PowerShell.*, CimCmdlets, ScheduledTasks, NetTCPIP, NetAdapter, DnsClient,
  PKI, Microsoft.PowerShell.LocalAccounts, Storage, Defender, BitLocker, TrustedPlatformModule, SmbShare,
  NetSecurity, PSDiagnostics, International, Appx, Dism, PSReadLine, PackageManagement, PowerShellGet``;
  reference pages under learn.microsoft.com/powershell/module/).
- ``INBOX_ALIASES``: Windows PowerShell 5.1's built-in aliases (``Get-Alias`` in a clean session;
  about_Aliases), alias → command.
- ``TYPE_ACCELERATORS``: PowerShell's type accelerators (``[psobject].Assembly.GetType(
  'System.Management.Automation.TypeAccelerators')::Get``); with ``System.``/``Microsoft.`` namespaced names they
  are the types a script may name that the lab has not modelled.
"""

from __future__ import annotations

import re


def _words(block: str) -> frozenset[str]:
    """The names of a whitespace-separated block, case-folded (Windows matches them case-insensitively)."""
    return frozenset(word.casefold() for word in block.split())


SYSTEM32_EXECUTABLES = _words(
    """
    arp at attrib auditpol bcdboot bcdedit bitsadmin bootcfg cacls certreq certutil change chcp chglogon chgport
    chgusr chkdsk chkntfs choice cipher clip cmd cmdkey cmstp comp compact control convert cscript dcomcnfg
    defrag diskpart diskperf diskshadow dism dispdiag doskey driverquery dsregcmd esentutl eventcreate eventvwr
    expand explorer extrac32 fc find findstr finger fltmc fodhelper fondue forfiles fsutil ftp getmac gpresult
    gpupdate help hostname icacls ipconfig iscsicli klist ktmutil label lodctr logman logoff makecab manage-bde
    mbr2gpt mmc mode more mountvol msg msiexec msinfo32 mstsc nbtstat net net1 netsh netstat nltest notepad
    nslookup ntbackup openfiles pathping perfmon ping pktmon pnputil powercfg powershell powershell_ise print
    prompt pwlauncher qappsrv qprocess query quser qwinsta rasdial rdpsign recover reg regedit regedt32 regini
    regsvr32 relog repair-bde replace reset resmon robocopy route rpcping rundll32 runas rwinsta sc schtasks
    secedit setspn setx sfc shutdown sort subst systeminfo takeown taskkill tasklist taskmgr tcmsetup telnet
    tftp timeout tpmtool tracerpt tracert tree tscon tsdiscon tskill typeperf tzutil unlodctr verifier vssadmin
    w32tm waitfor wbadmin wecutil wevtutil where whoami winrm winrs winver wmic wscript wsl wsmprovhost wuauclt
    xcopy
    """
)

CMD_BUILTINS = _words(
    """
    assoc break call cd chdir cls color copy date del dir dpath echo endlocal erase exit for ftype goto if keys
    md mkdir mklink move path pause popd prompt pushd rd rem ren rename rmdir set setlocal shift start time title
    type ver verify vol
    """
)

INBOX_CMDLETS = _words(
    """
    Add-Computer Add-Content Add-History Add-LocalGroupMember Add-Member Add-PSSnapin Add-Type Add-WindowsCapability
    Clear-Content Clear-History Clear-Host Clear-Item Clear-ItemProperty Clear-RecycleBin Clear-Variable
    Compare-Object Complete-Transaction Compress-Archive Connect-PSSession Connect-WSMan ConvertFrom-Csv
    ConvertFrom-Json ConvertFrom-SecureString ConvertFrom-String ConvertFrom-StringData Convert-Path ConvertTo-Csv
    ConvertTo-Html ConvertTo-Json ConvertTo-SecureString ConvertTo-Xml Copy-Item Copy-ItemProperty Debug-Process
    Disable-LocalUser Disable-NetAdapter Disable-PSRemoting Disable-ScheduledTask Disable-WSManCredSSP
    Disconnect-PSSession Disconnect-WSMan Enable-LocalUser Enable-NetAdapter Enable-PSRemoting
    Enable-ScheduledTask Enable-WSManCredSSP Enter-PSHostProcess Enter-PSSession Exit-PSSession Expand-Archive
    Export-Alias Export-Certificate Export-Clixml Export-Console Export-Csv Export-FormatData Export-ModuleMember
    Export-PfxCertificate Export-PSSession Export-ScheduledTask ForEach-Object Format-Custom Format-Hex
    Format-List Format-Table Format-Volume Format-Wide Get-Acl Get-Alias Get-AppxPackage Get-AuthenticodeSignature
    Get-BitLockerVolume Get-ChildItem Get-CimAssociatedInstance Get-CimClass Get-CimInstance Get-CimSession
    Get-Clipboard Get-CmsMessage Get-Command Get-ComputerInfo Get-ComputerRestorePoint Get-Content
    Get-ControlPanelItem Get-Credential Get-Culture Get-Date Get-Disk Get-DnsClient Get-DnsClientCache
    Get-DnsClientServerAddress Get-Event Get-EventLog Get-EventSubscriber Get-ExecutionPolicy Get-FileHash
    Get-FormatData Get-Help Get-History Get-Host Get-HotFix Get-Item Get-ItemProperty Get-ItemPropertyValue
    Get-Job Get-LocalGroup Get-LocalGroupMember Get-LocalUser Get-Location Get-Member Get-Module
    Get-MpComputerStatus Get-MpPreference Get-NetAdapter Get-NetConnectionProfile Get-NetFirewallRule
    Get-NetIPAddress Get-NetIPConfiguration Get-NetIPInterface Get-NetRoute Get-NetTCPConnection Get-Partition
    Get-PfxCertificate Get-PhysicalDisk Get-Process Get-PSBreakpoint Get-PSCallStack Get-PSDrive Get-PSHostProcessInfo
    Get-PSProvider Get-PSReadLineOption Get-PSSession Get-PSSessionCapability Get-PSSessionConfiguration
    Get-PSSnapin Get-Random Get-RunspaceDebug Get-Runspace Get-ScheduledJob Get-ScheduledTask Get-ScheduledTaskInfo
    Get-Service Get-SmbShare Get-TimeZone Get-TraceSource Get-Tpm Get-Transaction Get-TypeData Get-UICulture
    Get-Unique Get-Variable Get-Volume Get-WindowsCapability Get-WindowsOptionalFeature Get-WinEvent
    Get-WinSystemLocale Get-WmiObject Get-WSManCredSSP Get-WSManInstance Group-Object Import-Alias
    Import-Certificate Import-Clixml Import-Csv Import-LocalizedData Import-Module Import-PfxCertificate
    Import-PowerShellDataFile Import-PSSession Invoke-CimMethod Invoke-Command Invoke-DscResource Invoke-Expression
    Invoke-History Invoke-Item Invoke-RestMethod Invoke-WebRequest Invoke-WmiMethod Invoke-WSManAction
    Join-Path Limit-EventLog Measure-Command Measure-Object Move-Item Move-ItemProperty New-Alias New-CimInstance
    New-CimSession New-CimSessionOption New-Event New-EventLog New-FileCatalog New-Guid New-Item New-ItemProperty
    New-LocalGroup New-LocalUser New-Module New-ModuleManifest New-NetIPAddress New-NetFirewallRule New-Object
    New-PSDrive New-PSRoleCapabilityFile New-PSSession New-PSSessionConfigurationFile New-PSSessionOption
    New-PSTransportOption New-ScheduledTask New-ScheduledTaskAction New-ScheduledTaskPrincipal
    New-ScheduledTaskSettingsSet New-ScheduledTaskTrigger New-SelfSignedCertificate New-Service New-TemporaryFile
    New-TimeSpan New-Variable New-WebServiceProxy New-WinEvent New-WSManInstance New-WSManSessionOption Out-Default
    Out-File Out-GridView Out-Host Out-Null Out-Printer Out-String Pop-Location Protect-CmsMessage Push-Location
    Read-Host Receive-Job Receive-PSSession Register-ArgumentCompleter Register-CimIndicationEvent
    Register-EngineEvent Register-ObjectEvent Register-PSSessionConfiguration Register-ScheduledJob
    Register-ScheduledTask Register-WmiEvent Remove-Computer Remove-Event Remove-EventLog Remove-Item
    Remove-ItemProperty Remove-Job Remove-LocalGroup Remove-LocalGroupMember Remove-LocalUser Remove-Module
    Remove-PSBreakpoint Remove-PSDrive Remove-PSSession Remove-PSSnapin Remove-TypeData Remove-Variable
    Remove-WmiObject Remove-WSManInstance Rename-Computer Rename-Item Rename-ItemProperty Rename-LocalUser
    Reset-ComputerMachinePassword Resolve-DnsName Resolve-Path Restart-Computer Restart-Service Resume-Job
    Resume-Service Save-Help Select-Object Select-String Select-Xml Send-MailMessage Set-Acl Set-Alias
    Set-AuthenticodeSignature Set-CimInstance Set-Clipboard Set-Content Set-Culture Set-Date Set-DnsClientServerAddress
    Set-ExecutionPolicy Set-Item Set-ItemProperty Set-LocalUser Set-Location Set-MpPreference Set-NetConnectionProfile
    Set-NetFirewallRule Set-NetIPInterface Set-PSBreakpoint Set-PSDebug Set-PSReadLineOption
    Set-PSSessionConfiguration Set-ScheduledTask Set-Service Set-StrictMode Set-TimeZone Set-TraceSource
    Set-Variable Set-WmiInstance Set-WSManInstance Set-WSManQuickConfig Show-Command Show-ControlPanelItem
    Show-EventLog Sort-Object Split-Path Start-BitsTransfer Start-DscConfiguration Start-Job Start-MpScan
    Start-Process Start-ScheduledTask Start-Service Start-Sleep Start-Transaction Start-Transcript Stop-Computer
    Stop-Job Stop-Process Stop-ScheduledTask Stop-Service Stop-Transcript Suspend-Job Suspend-Service
    Tee-Object Test-ComputerSecureChannel Test-Connection Test-FileCatalog Test-ModuleManifest Test-NetConnection
    Test-Path Test-PSSessionConfigurationFile Test-WSMan Trace-Command Unblock-File Undo-Transaction
    Unprotect-CmsMessage Unregister-Event Unregister-PSSessionConfiguration Unregister-ScheduledJob
    Unregister-ScheduledTask Update-FormatData Update-Help Update-List Update-TypeData Use-Transaction
    Wait-Debugger Wait-Event Wait-Job Wait-Process Where-Object Write-Debug Write-Error Write-EventLog Write-Host
    Write-Information Write-Output Write-Progress Write-Verbose Write-Warning Get-PSRepository Find-Module
    Install-Module Get-InstalledModule Find-Package Get-Package Install-Package Get-PackageProvider
    Install-PackageProvider Register-PSRepository Set-PSRepository Update-Module Publish-Module Save-Module
    Get-WindowsUpdateLog Get-AppLockerPolicy Get-BitsTransfer Get-Certificate Get-CertificateTemplate
    Get-SmbConnection Get-SmbMapping New-SmbMapping Get-NetNeighbor Get-NetAdapterBinding Get-NetLbfoTeam
    Clear-DnsClientCache Register-DnsClient Get-TlsCipherSuite Get-WindowsDriver Get-WindowsPackage
    Get-WindowsEdition Repair-WindowsImage Enable-WindowsOptionalFeature Disable-WindowsOptionalFeature
    Get-ScheduledTaskRunInfo Get-ClusteredScheduledTask Get-StorageJob Get-PSReadLineKeyHandler
    Enable-ComputerRestore Disable-ComputerRestore Checkpoint-Computer Restore-Computer Get-PnpDevice
    """
)

INBOX_ALIASES: dict[str, str] = {
    alias.casefold(): command
    for alias, command in (
        ("%", "ForEach-Object"), ("?", "Where-Object"), ("ac", "Add-Content"), ("asnp", "Add-PSSnapin"),
        ("cat", "Get-Content"), ("cd", "Set-Location"), ("CFS", "ConvertFrom-String"), ("chdir", "Set-Location"),
        ("clc", "Clear-Content"), ("clear", "Clear-Host"), ("clhy", "Clear-History"), ("cli", "Clear-Item"),
        ("clp", "Clear-ItemProperty"), ("cls", "Clear-Host"), ("clv", "Clear-Variable"), ("cnsn", "Connect-PSSession"),
        ("compare", "Compare-Object"), ("copy", "Copy-Item"), ("cp", "Copy-Item"), ("cpi", "Copy-Item"),
        ("cpp", "Copy-ItemProperty"), ("curl", "Invoke-WebRequest"), ("cvpa", "Convert-Path"),
        ("dbp", "Disable-PSBreakpoint"),
        ("del", "Remove-Item"), ("diff", "Compare-Object"), ("dir", "Get-ChildItem"), ("dnsn", "Disconnect-PSSession"),
        ("ebp", "Enable-PSBreakpoint"), ("echo", "Write-Output"), ("epal", "Export-Alias"), ("epcsv", "Export-Csv"),
        ("epsn", "Export-PSSession"), ("erase", "Remove-Item"), ("etsn", "Enter-PSSession"), ("exsn", "Exit-PSSession"),
        ("fc", "Format-Custom"), ("fhx", "Format-Hex"), ("fl", "Format-List"), ("foreach", "ForEach-Object"),
        ("ft", "Format-Table"), ("fw", "Format-Wide"), ("gal", "Get-Alias"), ("gbp", "Get-PSBreakpoint"),
        ("gc", "Get-Content"), ("gcb", "Get-Clipboard"), ("gci", "Get-ChildItem"), ("gcm", "Get-Command"),
        ("gcs", "Get-PSCallStack"), ("gdr", "Get-PSDrive"), ("ghy", "Get-History"), ("gi", "Get-Item"),
        ("gin", "Get-ComputerInfo"), ("gjb", "Get-Job"), ("gl", "Get-Location"), ("gm", "Get-Member"),
        ("gmo", "Get-Module"), ("gp", "Get-ItemProperty"), ("gps", "Get-Process"), ("gpv", "Get-ItemPropertyValue"),
        ("group", "Group-Object"), ("gsn", "Get-PSSession"), ("gsnp", "Get-PSSnapin"), ("gsv", "Get-Service"),
        ("gtz", "Get-TimeZone"), ("gu", "Get-Unique"), ("gv", "Get-Variable"), ("gwmi", "Get-WmiObject"),
        ("h", "Get-History"), ("history", "Get-History"), ("icm", "Invoke-Command"), ("iex", "Invoke-Expression"),
        ("ihy", "Invoke-History"), ("ii", "Invoke-Item"), ("ipal", "Import-Alias"), ("ipcsv", "Import-Csv"),
        ("ipmo", "Import-Module"), ("ipsn", "Import-PSSession"), ("irm", "Invoke-RestMethod"),
        ("ise", "powershell_ise.exe"),
        ("iwmi", "Invoke-WmiMethod"), ("iwr", "Invoke-WebRequest"), ("kill", "Stop-Process"), ("lp", "Out-Printer"),
        ("ls", "Get-ChildItem"), ("man", "help"), ("md", "mkdir"), ("measure", "Measure-Object"), ("mi", "Move-Item"),
        ("mount", "New-PSDrive"), ("move", "Move-Item"), ("mp", "Move-ItemProperty"), ("mv", "Move-Item"),
        ("nal", "New-Alias"), ("ndr", "New-PSDrive"), ("ni", "New-Item"), ("nmo", "New-Module"),
        ("npssc", "New-PSSessionConfigurationFile"), ("nsn", "New-PSSession"), ("nv", "New-Variable"),
        ("ogv", "Out-GridView"), ("oh", "Out-Host"), ("popd", "Pop-Location"), ("ps", "Get-Process"),
        ("pushd", "Push-Location"), ("pwd", "Get-Location"), ("r", "Invoke-History"), ("rbp", "Remove-PSBreakpoint"),
        ("rcjb", "Receive-Job"), ("rcsn", "Receive-PSSession"), ("rd", "Remove-Item"), ("rdr", "Remove-PSDrive"),
        ("ren", "Rename-Item"), ("ri", "Remove-Item"), ("rjb", "Remove-Job"), ("rm", "Remove-Item"),
        ("rmdir", "Remove-Item"), ("rmo", "Remove-Module"), ("rni", "Rename-Item"), ("rnp", "Rename-ItemProperty"),
        ("rp", "Remove-ItemProperty"), ("rsn", "Remove-PSSession"), ("rsnp", "Remove-PSSnapin"), ("rujb", "Resume-Job"),
        ("rv", "Remove-Variable"), ("rvpa", "Resolve-Path"), ("rwmi", "Remove-WmiObject"), ("sajb", "Start-Job"),
        ("sal", "Set-Alias"), ("saps", "Start-Process"), ("sasv", "Start-Service"), ("sbp", "Set-PSBreakpoint"),
        ("sc", "Set-Content"), ("scb", "Set-Clipboard"), ("select", "Select-Object"), ("set", "Set-Variable"),
        ("shcm", "Show-Command"), ("si", "Set-Item"), ("sl", "Set-Location"), ("sleep", "Start-Sleep"),
        ("sls", "Select-String"), ("sort", "Sort-Object"), ("sp", "Set-ItemProperty"), ("spjb", "Stop-Job"),
        ("spps", "Stop-Process"), ("spsv", "Stop-Service"), ("start", "Start-Process"), ("stz", "Set-TimeZone"),
        ("sujb", "Suspend-Job"), ("sv", "Set-Variable"), ("swmi", "Set-WmiInstance"), ("tee", "Tee-Object"),
        ("trcm", "Trace-Command"), ("type", "Get-Content"), ("wget", "Invoke-WebRequest"), ("where", "Where-Object"),
        ("wjb", "Wait-Job"), ("write", "Write-Output"),
    )
}  # fmt: skip

TYPE_ACCELERATORS = _words(
    """
    adsi adsisearcher alias allowemptycollection allowemptystring allownull argumentcompleter array bigint bool
    byte char cimclass cimconverter ciminstance cimsession cimtype cmdletbinding cultureinfo datetime decimal
    double dsclocalconfigurationmanager dscproperty dscresource experimentaction experimental float guid hashtable
    initialsessionstate int int16 int32 int64 ipaddress ipendpoint long mailaddress norunspaceaffinity nullstring
    object ordered outputtype parameter physicaladdress pscredential pscustomobject psdefaultvalue pslistmodifier
    psmoduleinfo psobject psprimitivedictionary pstypenameattribute powershell ref regex runspace runspacefactory
    sbyte scriptblock securestring short single string supportswildcards switch timespan type uint16
    uint32 uint64 uri validatecount validatedrive validatelength validatenotnull validatenotnullorempty
    validatepattern validaterange validatescript validateset validateuserdrive version void wildcardpattern wmi
    wmiclass wmisearcher x500distinguishedname x509certificate xml
    """
)

# Namespaces of the .NET Framework 4.x class library and Windows PowerShell's assemblies: a type named in one of
# them is taken to exist on Windows (the lab does not carry the full type list).
_DOTNET_NAMESPACE = re.compile(r"^(?:system|microsoft)\.[a-z_][\w.`]*$", re.IGNORECASE)
# PowerShell also resolves a name relative to System (``[Text.UTF8Encoding]``, ``[IO.File]``): the System
# namespaces of the .NET Framework class library a script may name that way.
_SYSTEM_CHILD = re.compile(
    r"^(?:collections|componentmodel|configuration|data|diagnostics|directoryservices|drawing|globalization|io|"
    r"linq|management|net|numerics|reflection|resources|runtime|security|serviceprocess|text|threading|timers|"
    r"web|windows|xml)\.[a-z_][\w.`]*$",
    re.IGNORECASE,
)


def _program_name(command: str) -> str:
    """``C:\\Windows\\System32\\IPCONFIG.EXE`` → ``ipconfig``."""
    name = command.strip().strip('"').replace("/", "\\").rpartition("\\")[2].casefold()
    for suffix in (".exe", ".com", ".cmd", ".bat", ".msc", ".cpl"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


# Where those programs live: System32 and its 32/64-bit aliases, and Windows PowerShell's folder.
_SYSTEM_FOLDER = re.compile(
    r"^(?:[a-z]:)?\\windows\\(?:system32|syswow64|sysnative)(?:\\windowspowershell\\v1\.0)?$", re.IGNORECASE
)


def is_windows_executable(command: str) -> bool:
    """A program Windows has in System32: by name (with or without an extension) or by its System32 path; a path
    into another folder names a file Windows does not ship."""
    folder = command.strip().strip('"').replace("/", "\\").rpartition("\\")[0]
    if folder and not _SYSTEM_FOLDER.match(folder):
        return False
    return _program_name(command) in SYSTEM32_EXECUTABLES


def is_cmd_builtin(name: str) -> bool:
    return name.casefold() in CMD_BUILTINS


def is_inbox_command(name: str) -> bool:
    """A cmdlet, function or alias that Windows PowerShell 5.1 on Windows 10/11 has without installing anything."""
    folded = name.casefold()
    return folded in INBOX_CMDLETS or folded in INBOX_ALIASES


def is_dotnet_type(name: str) -> bool:
    """A type name that exists for Windows PowerShell 5.1: an accelerator or a System./Microsoft. type."""
    bare = name.strip().strip("[]").removesuffix("[]")
    folded = bare.casefold()
    return folded in TYPE_ACCELERATORS or bool(_DOTNET_NAMESPACE.match(bare) or _SYSTEM_CHILD.match(bare))
