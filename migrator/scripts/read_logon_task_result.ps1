# migrator: idempotent=true
#
# read_logon_task_result: what the at-logon task armed by arm_logon_task did for one user: whether the task is
# still registered, its last run (Get-ScheduledTaskInfo LastRunTime/LastTaskResult; 0x41303 = has not run)
# and the result file the user-context run wrote (learn.microsoft.com/powershell/module/scheduledtasks).
# Read-only.
param([string]$UserSid)

$ErrorActionPreference = 'Stop'

if ($UserSid -notmatch '^S-1-\d+(-\d+){1,14}$') { throw 'UserSid must be a SID (S-1-...)' }
$dir = Join-Path (Join-Path (Join-Path $env:ProgramData 'migrator') 'logon') $UserSid
$taskName = 'migrator-logon-' + $UserSid
$taskPath = '\migrator\'
$task = @(Get-ScheduledTask -TaskName $taskName -TaskPath $taskPath -ErrorAction SilentlyContinue)
$info = $null
if ($task.Count -gt 0) {
    $i = Get-ScheduledTaskInfo -TaskName $taskName -TaskPath $taskPath
    $info = [ordered]@{
        state = [string]$task[0].State
        last_run_time = if ($null -ne $i.LastRunTime) { $i.LastRunTime.ToUniversalTime().ToString('o') } else { $null }
        last_task_result = [int64]$i.LastTaskResult
    }
}
$resultPath = Join-Path $dir 'result.json'
$result = $null
if (Test-Path -LiteralPath $resultPath) { $result = Get-Content -LiteralPath $resultPath -Raw | ConvertFrom-Json }
[ordered]@{
    task = $taskPath + $taskName
    task_exists = $task.Count -gt 0
    task_info = $info
    result = $result
} | ConvertTo-Json -Compress -Depth 6
