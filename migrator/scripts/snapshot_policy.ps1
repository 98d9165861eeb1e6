# migrator: idempotent=true
#
# snapshot_policy: read a list of Windows Hello for Business policy values (path, name) and return, for each,
# whether it existed, its type and data: the record restore_policy writes back. Read-only.
# Locations: learn.microsoft.com/windows/client-management/mdm/passportforwork-csp and hello-for-business
# cloud Kerberos trust deployment (GPO HKLM/HKU ...\Policies\Microsoft\PassportForWork).
param([object[]]$Entries = @())

$ErrorActionPreference = 'Stop'

# migrator: include policy_values

$records = New-Object System.Collections.ArrayList
foreach ($entry in $Entries) {
    $path = [string]$entry.path
    $name = [string]$entry.name
    Assert-PolicyLocation $path $name
    [void]$records.Add((Read-PolicyValue $path $name))
}
[ordered]@{ records = $records } | ConvertTo-Json -Compress -Depth 6
