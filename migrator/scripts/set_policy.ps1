# migrator: idempotent=true
#
# set_policy: set or remove a list of Windows Hello for Business policy values (the whole policy plan, in
# order, in one call) and return, for each, the value it had before (existed, type, data) so the change can be
# rolled back with restore_policy. Idempotent: writing a value it already has changes nothing (and says so:
# changed = false), so a repeated call after a lost answer writes nothing twice.
# Where the values live: Group Policy HKLM\SOFTWARE\Policies\Microsoft\PassportForWork (and per user
# HKU\<SID>\...), MDM HKLM\SOFTWARE\Microsoft\Policies\PassportForWork\<TenantId>\Device\Policies
# (learn.microsoft.com/windows/security/identity-protection/hello-for-business/deploy/hybrid-cloud-kerberos-trust;
# learn.microsoft.com/windows/client-management/mdm/passportforwork-csp). Any other key is refused, for every
# value of the list before the first is written (a refused list writes nothing).
# Each value: @{ path; name; type (default DWord); value; remove }.
param([object[]]$Values = @())

$ErrorActionPreference = 'Stop'

# migrator: include policy_values

foreach ($entry in $Values) {
    Assert-PolicyLocation ([string]$entry.path) ([string]$entry.name)
}
$changes = New-Object System.Collections.ArrayList
foreach ($entry in $Values) {
    $path = [string]$entry.path
    $name = [string]$entry.name
    $type = [string]$entry.type
    if (-not $type) { $type = 'DWord' }
    $previous = Read-PolicyValue $path $name
    $changed = $false
    if ($entry.remove) {
        if ($previous['existed']) {
            Remove-ItemProperty -LiteralPath $path -Name $name
            $changed = $true
        }
    } else {
        $data = ConvertTo-RegistryData $entry.value $type
        $sameType = $previous['type'] -eq $type -or ($type -eq 'ExpandString' -and $previous['type'] -eq 'String')
        $same = $previous['existed'] -and $sameType -and ((ConvertTo-Json @($previous['data']) -Compress) -eq (ConvertTo-Json @($data) -Compress))
        if (-not $same) {
            Write-PolicyValue $path $name $data $type
            $changed = $true
        }
    }
    [void]$changes.Add([ordered]@{
        previous = $previous
        current = (Read-PolicyValue $path $name)
        changed = $changed
    })
}
[ordered]@{ changes = $changes } | ConvertTo-Json -Compress -Depth 6
