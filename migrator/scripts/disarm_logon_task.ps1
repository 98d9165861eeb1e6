# migrator: idempotent=true
#
# disarm_logon_task: unregister the at-logon task arm_logon_task registered for one user and delete its
# folder, returning the result file first if the task ran (so the evidence of a deletion is not lost).
# Idempotent: disarming a user with no task changes nothing (learn.microsoft.com/powershell/module/
# scheduledtasks/unregister-scheduledtask).
param([string]$UserSid)

$ErrorActionPreference = 'Stop'

if ($UserSid -notmatch '^S-1-\d+(-\d+){1,14}$') { throw 'UserSid must be a SID (S-1-...)' }
$dir = Join-Path (Join-Path (Join-Path $env:ProgramData 'migrator') 'logon') $UserSid
$taskName = 'migrator-logon-' + $UserSid
$taskPath = '\migrator\'
$existed = @(Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue).Count -gt 0
if ($existed) { Unregister-ScheduledTask -TaskName $taskName -TaskPath $taskPath -Confirm:$false }
$resultPath = Join-Path $dir 'result.json'
$result = $null
if (Test-Path -LiteralPath $resultPath) { $result = Get-Content -LiteralPath $resultPath -Raw | ConvertFrom-Json }
if (Test-Path -LiteralPath $dir) { Remove-Item -LiteralPath $dir -Recurse -Force }
[ordered]@{
    task = $taskPath + $taskName
    task_removed = $existed
    task_left = @(Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue).Count -gt 0
    files_left = (Test-Path -LiteralPath $dir)
    result = $result
} | ConvertTo-Json -Compress -Depth 6
