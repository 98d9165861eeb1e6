# migrator: idempotent=false
#
# user_context: run ONE command from a fixed allow-list as a signed-in user, through a scheduled task whose
# principal is that user with the Interactive logon type (it runs only in the user's existing session, no
# password stored), then read its result and exit code, and always unregister the task and delete its files.
# Not idempotent: it registers a task and, for delete-container, may delete a Hello container.
#
# Why a task: a WinRM/PSRP session is a network logon of the admin; `dsregcmd /status` user and SSO sections,
# `klist` and `certutil -deletehellocontainer` act on the CALLER's logon session and container
# (learn.microsoft.com/entra/identity/devices/troubleshoot-device-dsregcmd; hello-for-business "cloud Kerberos
# trust" migration: "run certutil -deletehellocontainer in the user's context"). Task cmdlets:
# learn.microsoft.com/powershell/module/scheduledtasks (New-ScheduledTaskPrincipal -LogonType Interactive).
#
# Commands (chosen by name, never passed as text):
#   hello-state       dsregcmd /status, klist, klist cloud_debug
#   delete-container  guarded delete: reads dsregcmd NgcSet/NgcKeyId, klist cloud_debug and the user's
#                     certificate store (`certutil -user -store My`: a certificate whose key is in the
#                     Microsoft Passport Key Storage Provider means certificate trust) and runs
#                     `certutil -deletehellocontainer` only if the container is still the expected one.
#                     With PromptSession (the user's session id, 0 or more), a container it deleted is followed
#                     at once by the request to sign out and back in (the sign_out_prompt library: msg, the
#                     text on standard input), answered as `prompt`: the prompt needs no request of its own.
# Values reach the task as a JSON file it reads, never as command-line text.
param(
    [string]$User,
    [string]$Command,
    [string]$ExpectedKeyId = '',
    [string]$ExpectedTrust = '',
    [int]$TimeoutSeconds = 120,
    [int]$PromptSession = -1,
    [string]$PromptText = '',
    [int]$PromptSeconds = 60
)

$ErrorActionPreference = 'Stop'

if (@('hello-state', 'delete-container') -notcontains $Command) { throw 'Command must be hello-state or delete-container' }
if (@('', 'key', 'cert', 'cloud') -notcontains $ExpectedTrust) { throw 'ExpectedTrust must be key, cert, cloud or empty' }
if ($Command -eq 'delete-container' -and $ExpectedKeyId -notmatch '^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$') {
    throw 'delete-container needs ExpectedKeyId, the container key id (GUID)'
}
if ([string]::IsNullOrWhiteSpace($User)) { throw 'User is required' }
if ($TimeoutSeconds -lt 5) { $TimeoutSeconds = 5 }
if ($TimeoutSeconds -gt 3600) { $TimeoutSeconds = 3600 }
if ($PromptSession -ge 0 -and ($Command -ne 'delete-container' -or [string]::IsNullOrWhiteSpace($PromptText))) {
    throw 'PromptSession goes with delete-container and PromptText'
}

# migrator: include native
# migrator: include sign_out_prompt

$inner = @'
# migrator: include user_context_inner
'@

$id = [guid]::NewGuid().ToString('N')
$root = Join-Path $env:ProgramData 'migrator'
$dir = Join-Path $root $id
$taskName = 'migrator-' + $id
$taskPath = '\migrator\'
$runPath = Join-Path $dir 'run.ps1'
$resultPath = Join-Path $dir 'result.json'
$status = 'completed'
$message = $null
$lastResult = $null
$result = $null
$registered = $false
try {
    New-Item -ItemType Directory -Path $dir -Force | Out-Null
    Set-Content -LiteralPath $runPath -Value $inner -Encoding UTF8
    [ordered]@{ command = $Command; expected_key_id = $ExpectedKeyId; expected_trust = $ExpectedTrust } |
        ConvertTo-Json -Compress | Set-Content -LiteralPath (Join-Path $dir 'request.json') -Encoding UTF8
    # Only our own generated folder name reaches the command line.
    $arguments = '-NoProfile -NonInteractive -ExecutionPolicy Bypass -WindowStyle Hidden -File "' + $runPath + '" -Dir "' + $dir + '"'
    $action = New-ScheduledTaskAction -Execute 'powershell.exe' -Argument $arguments
    $principal = New-ScheduledTaskPrincipal -UserId $User -LogonType Interactive -RunLevel Limited
    $settings = New-ScheduledTaskSettingsSet -AllowStartIfOnBatteries -DontStopIfGoingOnBatteries
    try {
        Register-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Action $action -Principal $principal -Settings $settings -Force | Out-Null
        $registered = $true
    } catch {
        $status = 'register-failed'
        $message = $_.Exception.Message
    }
    if ($registered) {
        Start-ScheduledTask -TaskName $taskName -TaskPath $taskPath
        $finished = $false
        for ($i = 0; $i -lt ($TimeoutSeconds * 2) -and -not $finished; $i++) {
            Start-Sleep -Milliseconds 500
            $state = [string](Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath).State
            if ((Test-Path -LiteralPath $resultPath) -and $state -ne 'Running' -and $state -ne 'Queued') { $finished = $true }
        }
        $info = Get-ScheduledTaskInfo -TaskName $taskName -TaskPath $taskPath
        $lastResult = [int64]$info.LastTaskResult
        if ($finished) {
            $result = Get-Content -LiteralPath $resultPath -Raw | ConvertFrom-Json
        } else {
            # 0x41303 SCHED_S_TASK_HAS_NOT_RUN: an Interactive task does not start without the user's session.
            if ($lastResult -eq 267011) { $status = 'not-started' } else { $status = 'timeout' }
            Stop-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue
        }
    }
} finally {
    if ($registered) { Unregister-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Confirm:$false -ErrorAction SilentlyContinue }
    Remove-Item -LiteralPath $dir -Recurse -Force -ErrorAction SilentlyContinue
}
$prompt = $null
if ($PromptSession -ge 0 -and $null -ne $result -and $result.deleted -eq $true) {
    $prompt = Invoke-SignOutPrompt $PromptSession $PromptText $PromptSeconds
}
$taskLeft = @(Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue).Count -gt 0
[ordered]@{
    status = $status
    message = $message
    command = $Command
    user = $User
    task = $taskPath + $taskName
    last_task_result = $lastResult
    result = $result
    cleaned_up = [ordered]@{ task = -not $taskLeft; files = -not (Test-Path -LiteralPath $dir) }
    prompt = $prompt
} | ConvertTo-Json -Compress -Depth 6
