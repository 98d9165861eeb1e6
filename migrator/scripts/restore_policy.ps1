# migrator: idempotent=true
#
# restore_policy: write back snapshot records (from snapshot_policy or set_policy's "previous"): values that
# existed get their type and data again, values that did not exist are removed. Idempotent: restoring twice
# leaves the same registry. Locations (PassportForWork GPO and CSP keys only): learn.microsoft.com/windows/
# client-management/mdm/passportforwork-csp and hello-for-business "Policy conflicts from multiple policy sources".
param([object[]]$Records = @())

$ErrorActionPreference = 'Stop'

# migrator: include policy_values

$done = New-Object System.Collections.ArrayList
foreach ($record in $Records) {
    $path = [string]$record.path
    $name = [string]$record.name
    Assert-PolicyLocation $path $name
    $now = Read-PolicyValue $path $name
    $action = 'unchanged'
    if ($record.existed) {
        $type = [string]$record.type
        $data = ConvertTo-RegistryData $record.data $type
        $same = $now['existed'] -and $now['type'] -eq $type -and ((ConvertTo-Json @($now['data']) -Compress) -eq (ConvertTo-Json @($data) -Compress))
        if (-not $same) {
            Write-PolicyValue $path $name $data $type
            $action = 'set'
        }
    } elseif ($now['existed']) {
        Remove-ItemProperty -LiteralPath $path -Name $name
        $action = 'removed'
    }
    [void]$done.Add([ordered]@{ path = $path; name = $name; action = $action })
}
[ordered]@{ restored = $done } | ConvertTo-Json -Compress -Depth 6
