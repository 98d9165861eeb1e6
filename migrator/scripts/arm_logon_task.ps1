# migrator: idempotent=true
#
# arm_logon_task: register an at-logon task for ONE user that runs the guarded Hello container delete at that
# user's next sign-in, in the user's own context, and leaves its result in ProgramData for
# read_logon_task_result. Idempotent: the task name is fixed per user SID and registered with -Force, so arming
# twice leaves one task with the same request.
#
# Why: `certutil -deletehellocontainer` must run as the user (hello-for-business cloud Kerberos trust,
# "certificate trust to cloud Kerberos trust" migration); for a user who is not signed in, an at-logon task
# with that user as principal does it at the next sign-in (learn.microsoft.com/powershell/module/scheduledtasks/
# new-scheduledtasktrigger -AtLogOn -User). The guard (same key id, same trust) is checked in that same run.
param(
    [string]$UserSid,
    [string]$ExpectedKeyId,
    [string]$ExpectedTrust = ''
)

$ErrorActionPreference = 'Stop'

if ($UserSid -notmatch '^S-1-\d+(-\d+){1,14}$') { throw 'UserSid must be a SID (S-1-...)' }
if (@('', 'key', 'cert', 'cloud') -notcontains $ExpectedTrust) { throw 'ExpectedTrust must be key, cert, cloud or empty' }
if ($ExpectedKeyId -notmatch '^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$') {
    throw 'ExpectedKeyId must be the container key id (GUID)'
}

$inner = @'
param([string]$Dir)
# Runs AS THE USER (scheduled task, Interactive logon type): reads the user's own Hello state and, for
# delete-container, deletes the container only when it is still the expected one, in this same run.
$ErrorActionPreference = 'Stop'
function Invoke-Native {
    param([string]$FilePath, [string[]]$Arguments)
    $ErrorActionPreference = 'Continue'
    $lines = & $FilePath @Arguments 2>&1
    $code = $LASTEXITCODE
    $text = @(
        foreach ($line in $lines) {
            if ($line -is [System.Management.Automation.ErrorRecord]) { $line.Exception.Message } else { [string]$line }
        }
    ) -join "`r`n"
    [ordered]@{ text = $text; exit_code = $code }
}
$request = Get-Content -LiteralPath (Join-Path $Dir 'request.json') -Raw | ConvertFrom-Json
$me = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$out = [ordered]@{ command = [string]$request.command; user = [string]$me.Name; sid = [string]$me.User.Value }
$out['dsregcmd'] = Invoke-Native 'dsregcmd.exe' @('/status')
if ($request.command -eq 'hello-state') {
    $out['klist'] = Invoke-Native 'klist.exe' @()
    $out['klist_cloud_debug'] = Invoke-Native 'klist.exe' @('cloud_debug')
} elseif ($request.command -eq 'delete-container') {
    $out['klist_cloud_debug'] = Invoke-Native 'klist.exe' @('cloud_debug')
    # Certificate trust enrols a certificate whose key is in the Microsoft Passport Key Storage Provider.
    $out['cert_store'] = Invoke-Native 'certutil.exe' @('-user', '-store', 'My')
    $dsText = [string]$out['dsregcmd']['text']
    $keyId = $null
    if ($dsText -match 'NgcKeyId\s*:\s*\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?') {
        $keyId = $Matches[1].ToLowerInvariant()
    }
    $ngcSet = $dsText -match 'NgcSet\s*:\s*YES'
    $cloudEvidence = ([string]$out['klist_cloud_debug']['text'] -match 'Cloud Primary \(Hybrid logon\) TGT available\s*:\s*1') -or ($dsText -match 'OnPremTgt\s*:\s*YES')
    $storeRead = $out['cert_store']['exit_code'] -eq 0
    $certEvidence = $storeRead -and ([string]$out['cert_store']['text'] -match 'Microsoft Passport Key Storage Provider')
    $observed = 'key'
    if ($certEvidence) { $observed = 'cert' } elseif ($cloudEvidence) { $observed = 'cloud' } elseif (-not $storeRead) { $observed = 'key-or-cert' }
    $expectedKey = ([string]$request.expected_key_id).Trim().TrimStart('{').TrimEnd('}').ToLowerInvariant()
    $expectedTrust = [string]$request.expected_trust
    $refusals = New-Object System.Collections.ArrayList
    if (-not $ngcSet -or $null -eq $keyId) { [void]$refusals.Add('no Hello container') }
    elseif ($keyId -ne $expectedKey) { [void]$refusals.Add('container key id changed') }
    if ($expectedTrust -eq 'cert' -and ($cloudEvidence -or ($storeRead -and -not $certEvidence))) { [void]$refusals.Add('container is no longer certificate trust') }
    if ($expectedTrust -eq 'key' -and ($cloudEvidence -or $certEvidence)) { [void]$refusals.Add('container is no longer key trust') }
    if ($expectedTrust -eq 'cloud' -and -not $cloudEvidence) { [void]$refusals.Add('container shows no cloud Kerberos trust') }
    $out['guard'] = [ordered]@{
        ngc_set = [bool]$ngcSet
        key_id = $keyId
        expected_key_id = $expectedKey
        expected_trust = $expectedTrust
        observed_trust = $observed
        cert_store_read = [bool]$storeRead
        refusals = $refusals
    }
    $out['deleted'] = $false
    if ($refusals.Count -eq 0) {
        $out['certutil'] = Invoke-Native 'certutil.exe' @('-deletehellocontainer')
        $out['deleted'] = $out['certutil']['exit_code'] -eq 0
    }
} else {
    $out['error'] = 'unknown command'
}
$out | ConvertTo-Json -Compress -Depth 6 | Set-Content -LiteralPath (Join-Path $Dir 'result.json') -Encoding UTF8
'@

# The SID was validated above: only digits, dashes and 'S' reach paths and the command line.
$dir = Join-Path (Join-Path (Join-Path $env:ProgramData 'migrator') 'logon') $UserSid
$taskName = 'migrator-logon-' + $UserSid
$taskPath = '\migrator\'
$runPath = Join-Path $dir 'run.ps1'
$replaced = @(Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue).Count -gt 0
New-Item -ItemType Directory -Path $dir -Force | Out-Null
Set-Content -LiteralPath $runPath -Value $inner -Encoding UTF8
[ordered]@{ command = 'delete-container'; expected_key_id = $ExpectedKeyId; expected_trust = $ExpectedTrust } |
    ConvertTo-Json -Compress | Set-Content -LiteralPath (Join-Path $dir 'request.json') -Encoding UTF8
$arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -File "' + $runPath + '" -Dir "' + $dir + '"'
$action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
$trigger = New-ScheduledTaskTrigger -AtLogOn -User $UserSid
$principal = New-ScheduledTaskPrincipal -UserId $UserSid -LogonType Interactive -RunLevel Limited
$settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
Register-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Action $action -Trigger $trigger -Principal $principal -Settings $settings -Force | Out-Null
[ordered]@{
    armed = $true
    task = $taskPath + $taskName
    replaced = $replaced
    # A result left by an earlier run is kept (evidence of a deletion): read_logon_task_result returns it.
    pending_result = (Test-Path -LiteralPath (Join-Path $dir 'result.json'))
} | ConvertTo-Json -Compress -Depth 6
