# migrator: idempotent=true
#
# snapshot_policy: read a list of Windows Hello for Business policy values (path, name) and return, for each,
# whether it existed, its type and data: the record restore_policy writes back. Read-only.
# With ScopedName, also that value in every policy scope that exists on the device: the Group Policy key of
# each user profile (HKU\<SID>\...) and each MDM scope (...\PassportForWork\<TenantId>\<Device|SID>\Policies):
# every value a policy plan may write, read before the plan is known (in preflight's pipeline).
# Locations: learn.microsoft.com/windows/client-management/mdm/passportforwork-csp and hello-for-business
# cloud Kerberos trust deployment (GPO HKLM/HKU ...\Policies\Microsoft\PassportForWork).
param(
    [object[]]$Entries = @(),
    [string]$ScopedName = ''
)

$ErrorActionPreference = 'Stop'

# migrator: include policy_values

$wanted = New-Object System.Collections.ArrayList
foreach ($entry in $Entries) { [void]$wanted.Add(@{ path = [string]$entry.path; name = [string]$entry.name }) }
if ($ScopedName) {
    # The profiles collect_facts reads (local, domain and Entra accounts), and the MDM scopes that exist.
    $profileListKey = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\ProfileList'
    if (Test-Path -LiteralPath $profileListKey) {
        foreach ($sid in @(Get-ChildItem -LiteralPath $profileListKey | ForEach-Object { $_.PSChildName })) {
            if (-not ($sid -like 'S-1-5-21-*' -or $sid -like 'S-1-12-1-*')) { continue }
            $key = 'Registry::HKEY_USERS\' + $sid + '\SOFTWARE\Policies\Microsoft\PassportForWork'
            if (Test-Path -LiteralPath $key) { [void]$wanted.Add(@{ path = $key; name = $ScopedName }) }
        }
    }
    $mdmRoot = 'HKLM:\SOFTWARE\Microsoft\Policies\PassportForWork'
    if (Test-Path -LiteralPath $mdmRoot) {
        foreach ($tenant in @(Get-ChildItem -LiteralPath $mdmRoot | ForEach-Object { $_.PSChildName })) {
            foreach ($scope in @(Get-ChildItem -LiteralPath ($mdmRoot + '\' + $tenant) | ForEach-Object { $_.PSChildName })) {
                $key = $mdmRoot + '\' + $tenant + '\' + $scope + '\Policies'
                if (Test-Path -LiteralPath $key) { [void]$wanted.Add(@{ path = $key; name = $ScopedName }) }
            }
        }
    }
}
$records = New-Object System.Collections.ArrayList
foreach ($pair in $wanted) {
    Assert-PolicyLocation $pair['path'] $pair['name']
    [void]$records.Add((Read-PolicyValue $pair['path'] $pair['name']))
}
[ordered]@{ records = $records } | ConvertTo-Json -Compress -Depth 6
