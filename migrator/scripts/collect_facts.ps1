# migrator: idempotent=true
#
# collect_facts: everything the probe needs to know about one device, read-only, in one pipeline.
#
# What is read, and the Microsoft documentation that says where Windows keeps it:
# - Join state: `dsregcmd /status` (learn.microsoft.com/entra/identity/devices/troubleshoot-device-dsregcmd),
#   raw text, parsed by migrator.parse.dsregcmd; Win32_ComputerSystem PartOfDomain/Domain.
# - OS: Win32_OperatingSystem and HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion (UBR, DisplayVersion):
#   cloud Kerberos trust needs 19044.1566 / 22000.527 or later (hello-for-business cloud Kerberos trust
#   prerequisites).
# - TPM: Get-Tpm (TrustedPlatformModule module); needs elevation, a failure is recorded, not fatal.
# - Windows Hello for Business policy, both sources, raw (precedence is computed by the orchestrator):
#   Group Policy HKLM\SOFTWARE\Policies\Microsoft\PassportForWork and HKU\<SID>\SOFTWARE\Policies\Microsoft\
#   PassportForWork; MDM (PassportForWork CSP) HKLM\SOFTWARE\Microsoft\Policies\PassportForWork\<TenantId>\
#   {Device|<UserSid>}\Policies (learn.microsoft.com/windows/client-management/mdm/passportforwork-csp;
#   hello-for-business "Policy conflicts from multiple policy sources"); which computer values a GPO manages
#   (Resultant Set of Policy logging, root\RSOP\Computer).
# - Profiles: HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList, Win32_UserProfile; who is signed
#   in to which session: HKU\<SID>\Volatile Environment\<SessionId> and `quser` raw text.
# - Who holds a Hello credential: the PIN credential provider's per-SID keys under HKLM\SOFTWARE\Microsoft\
#   Windows\CurrentVersion\Authentication\Credential Providers\{D6886603-9D2F-4EB2-B667-1971041FA96B}.
# - DC line of sight: `nltest /dsgetdc:<domain> /force` (learn.microsoft.com/windows-server/administration/
#   windows-commands/nltest), only when domain joined.
# - Provisioning decisions: User Device Registration/Admin events 358, 360, 362 (hello-for-business
#   cloud Kerberos trust provisioning: "User account has Cloud TGT").
# KerbTopLevelNames (Entra Kerberos) is shown by dsregcmd only in a user's own context, never to this
# network logon: the probe takes Entra Kerberos per domain from its settings and the events above.
param()

$ErrorActionPreference = 'Stop'

$problems = New-Object System.Collections.ArrayList

function Add-Problem {
    param([string]$Where, [string]$Message)
    [void]$problems.Add([ordered]@{ where = $Where; message = $Message })
}

# migrator: include native

function Read-RegistryValues {
    # Every value of one key, raw (name -> data), or $null when the key does not exist.
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return $null }
    $values = [ordered]@{}
    $item = Get-ItemProperty -LiteralPath $Path -ErrorAction SilentlyContinue
    if ($null -ne $item) {
        foreach ($property in $item.PSObject.Properties) {
            if (@('PSPath', 'PSParentPath', 'PSChildName', 'PSDrive', 'PSProvider') -notcontains $property.Name) {
                $values[$property.Name] = $property.Value
            }
        }
    }
    return $values
}

function Get-SubkeyNames {
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path)) { return @() }
    return @(Get-ChildItem -LiteralPath $Path -ErrorAction SilentlyContinue | ForEach-Object { $_.PSChildName })
}

$identity = [System.Security.Principal.WindowsIdentity]::GetCurrent()

# ---- join state and OS ------------------------------------------------------------------------------------
$dsregcmd = Invoke-Native 'dsregcmd.exe' @('/status')
$computerSystem = $null
try {
    $cs = Get-CimInstance -ClassName Win32_ComputerSystem
    $computerSystem = [ordered]@{ part_of_domain = [bool]$cs.PartOfDomain; domain = [string]$cs.Domain; user_name = [string]$cs.UserName }
} catch {
    Add-Problem 'Win32_ComputerSystem' $_.Exception.Message
}
$os = [ordered]@{}
try {
    $osInfo = Get-CimInstance -ClassName Win32_OperatingSystem
    $os['caption'] = [string]$osInfo.Caption
    $os['version'] = [string]$osInfo.Version
    $os['build_number'] = [string]$osInfo.BuildNumber
} catch {
    Add-Problem 'Win32_OperatingSystem' $_.Exception.Message
}
$currentVersion = Read-RegistryValues 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion'
if ($null -ne $currentVersion) {
    $os['ubr'] = $currentVersion['UBR']
    $os['display_version'] = $currentVersion['DisplayVersion']
    $os['current_build'] = $currentVersion['CurrentBuild']
    $os['edition_id'] = $currentVersion['EditionID']
}

# ---- TPM ------------------------------------------------------------------------------------------------------
$tpm = [ordered]@{ present = $null; ready = $null; error = $null }
try {
    $t = Get-Tpm
    $tpm['present'] = [bool]$t.TpmPresent
    $tpm['ready'] = [bool]$t.TpmReady
} catch {
    $tpm['error'] = $_.Exception.Message
}

# ---- profiles, sessions, Hello credentials -----------------------------------------------------------------------
$profileListKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
$loaded = @{}
try {
    foreach ($p in @(Get-CimInstance -ClassName Win32_UserProfile)) { $loaded[[string]$p.SID] = [bool]$p.Loaded }
} catch {
    Add-Problem 'Win32_UserProfile' $_.Exception.Message
}
$profiles = New-Object System.Collections.ArrayList
foreach ($sid in (Get-SubkeyNames $profileListKey)) {
    # Local and domain accounts (S-1-5-21-...) and Entra accounts (S-1-12-1-...); not SYSTEM or services.
    if (-not ($sid -like 'S-1-5-21-*' -or $sid -like 'S-1-12-1-*')) { continue }
    $entry = Read-RegistryValues (Join-Path $profileListKey $sid)
    $volatile = Read-RegistryValues ('Registry::HKEY_USERS\' + $sid + '\Volatile Environment')
    $sessions = New-Object System.Collections.ArrayList
    if ($null -ne $volatile) {
        $volatileKey = 'Registry::HKEY_USERS\' + $sid + '\Volatile Environment'
        foreach ($number in @(Get-SubkeyNames $volatileKey | Where-Object { $_ -match '^\d+$' })) {
            $sessionValues = Read-RegistryValues ($volatileKey + '\' + $number)
            $sessionName = if ($null -ne $sessionValues) { [string]$sessionValues['SESSIONNAME'] } else { $null }
            [void]$sessions.Add([ordered]@{ id = [int]$number; session_name = $sessionName })
        }
    }
    [void]$profiles.Add([ordered]@{
        sid = $sid
        profile_path = if ($null -ne $entry) { [string]$entry['ProfileImagePath'] } else { $null }
        loaded = if ($loaded.ContainsKey($sid)) { $loaded[$sid] } else { $null }
        user_domain = if ($null -ne $volatile) { [string]$volatile['USERDOMAIN'] } else { $null }
        user_name = if ($null -ne $volatile) { [string]$volatile['USERNAME'] } else { $null }
        user_dns_domain = if ($null -ne $volatile) { [string]$volatile['USERDNSDOMAIN'] } else { $null }
        sessions = $sessions
    })
}
# Who signed in last (LogonUI: DOMAIN\user and SID): names a user who is not signed in now, and tells which NetBIOS
# domain a domain SID belongs to for the others.
$logonUi = Read-RegistryValues 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\LogonUI'
$lastLoggedOn = [ordered]@{
    sam_user = if ($null -ne $logonUi) { [string]$logonUi['LastLoggedOnSAMUser'] } else { $null }
    sid = if ($null -ne $logonUi) { [string]$logonUi['LastLoggedOnUserSID'] } else { $null }
}
$ngcKey = 'HKLM:\SOFTWARE\Microsoft\Windows\CurrentVersion\Authentication\Credential Providers\{D6886603-9D2F-4EB2-B667-1971041FA96B}'
$ngcSids = @(Get-SubkeyNames $ngcKey | Where-Object { $_ -like 'S-1-*' })
$quser = Invoke-Native 'quser.exe' @()

# ---- Windows Hello for Business policy, raw from both sources -----------------------------------------------------
$gpoSubkey = 'SOFTWARE\Policies\Microsoft\PassportForWork'
$gpoUsers = [ordered]@{}
foreach ($p in $profiles) {
    $values = Read-RegistryValues ('Registry::HKEY_USERS\' + $p['sid'] + '\' + $gpoSubkey)
    if ($null -ne $values) { $gpoUsers[$p['sid']] = $values }
}
$mdmRoot = 'HKLM:\SOFTWARE\Microsoft\Policies\PassportForWork'
$mdm = New-Object System.Collections.ArrayList
foreach ($tenant in (Get-SubkeyNames $mdmRoot)) {
    foreach ($scope in (Get-SubkeyNames (Join-Path $mdmRoot $tenant))) {
        $values = Read-RegistryValues ((Join-Path (Join-Path $mdmRoot $tenant) $scope) + '\Policies')
        if ($null -ne $values) { [void]$mdm.Add([ordered]@{ tenant_id = $tenant; scope = $scope; values = $values }) }
    }
}
# Which computer values Group Policy manages, and by which GPO: the Resultant Set of Policy logging of the last
# policy processing (root\RSOP\Computer, RSOP_RegistryPolicySetting at precedence 1; RSOP_GPO for the names), as
# gpresult /scope computer reads it. A value some GPO sets is rewritten at every background refresh.
$gpoManaged = New-Object System.Collections.ArrayList
$rsop = 'root\rsop\computer'
try {
    $gpoNames = @{}
    foreach ($g in @(Get-CimInstance -Namespace $rsop -ClassName RSOP_GPO -ErrorAction Stop)) {
        $gpoNames[[string]$g.id] = [string]$g.name
    }
    foreach ($s in @(Get-CimInstance -Namespace $rsop -ClassName RSOP_RegistryPolicySetting -ErrorAction Stop)) {
        if ([string]$s.registryKey -eq $gpoSubkey -and [int]$s.precedence -eq 1) {
            $gpoName = $gpoNames[[string]$s.GPOID]
            if ($null -eq $gpoName) { $gpoName = [string]$s.GPOID }
            [void]$gpoManaged.Add([ordered]@{ name = [string]$s.valueName; gpo = $gpoName })
        }
    }
} catch {
    Add-Problem 'RSoP' $_.Exception.Message
}
$policy = [ordered]@{
    gpo_computer = Read-RegistryValues ('HKLM:\' + $gpoSubkey)
    gpo_users = $gpoUsers
    mdm = $mdm
    gpo_managed = $gpoManaged
}

# ---- DC line of sight ----------------------------------------------------------------------------------------------
$nltest = $null
if ($null -ne $computerSystem -and $computerSystem['part_of_domain']) {
    $domain = $computerSystem['domain']
    # The domain comes from the device itself; still, only a DNS name may become a native argument.
    if ($domain -match '^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$') {
        $run = Invoke-Native 'nltest.exe' @("/dsgetdc:$domain", '/force')
        $nltest = [ordered]@{ domain = $domain; text = $run['text']; exit_code = $run['exit_code'] }
    } else {
        Add-Problem 'nltest' 'the domain name reported by Win32_ComputerSystem is not a DNS name'
    }
}

# ---- provisioning events -------------------------------------------------------------------------------------------
$events = New-Object System.Collections.ArrayList
try {
    $filter = @{ LogName = 'Microsoft-Windows-User Device Registration/Admin'; Id = 358, 360, 362 }
    foreach ($e in @(Get-WinEvent -FilterHashtable $filter -MaxEvents 20 -ErrorAction Stop)) {
        [void]$events.Add([ordered]@{
            id = [int]$e.Id
            time = $e.TimeCreated.ToUniversalTime().ToString('o')
            level = [string]$e.LevelDisplayName
            user_sid = if ($null -ne $e.UserId) { [string]$e.UserId } else { $null }
            message = [string]$e.Message
        })
    }
} catch {
    if ($_.FullyQualifiedErrorId -notlike 'NoMatchingEventsFound*') { Add-Problem 'Get-WinEvent' $_.Exception.Message }
}

$result = [ordered]@{
    schema = 1
    computer_name = $env:COMPUTERNAME
    caller = [ordered]@{ name = [string]$identity.Name; sid = [string]$identity.User.Value }
    computer_system = $computerSystem
    os = $os
    dsregcmd = $dsregcmd
    tpm = $tpm
    profiles = $profiles
    last_logged_on = $lastLoggedOn
    ngc_sids = $ngcSids
    quser = $quser
    policy = $policy
    nltest = $nltest
    events = $events
    problems = $problems
}
$result | ConvertTo-Json -Compress -Depth 6
