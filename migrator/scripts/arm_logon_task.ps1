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
# migrator: include user_context_inner
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
