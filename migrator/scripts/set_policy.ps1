# migrator: idempotent=true
#
# set_policy: set or remove ONE Windows Hello for Business policy value and return the value it had before
# (existed, type, data) so the change can be rolled back with restore_policy. Idempotent: writing the value it
# already has changes nothing (and says so: changed = false).
# Where the values live: Group Policy HKLM\SOFTWARE\Policies\Microsoft\PassportForWork (and per user
# HKU\<SID>\...), MDM HKLM\SOFTWARE\Microsoft\Policies\PassportForWork\<TenantId>\Device\Policies
# (learn.microsoft.com/windows/security/identity-protection/hello-for-business/deploy/hybrid-cloud-kerberos-trust;
# learn.microsoft.com/windows/client-management/mdm/passportforwork-csp). Any other key is refused.
param(
    [string]$Path,
    [string]$Name,
    $Value = $null,
    [string]$Type = 'DWord',
    [switch]$Remove
)

$ErrorActionPreference = 'Stop'

# migrator: include policy_values

Assert-PolicyLocation $Path $Name
$previous = Read-PolicyValue $Path $Name
$changed = $false
if ($Remove) {
    if ($previous['existed']) {
        Remove-ItemProperty -LiteralPath $Path -Name $Name
        $changed = $true
    }
} else {
    $data = ConvertTo-RegistryData $Value $Type
    $sameType = $previous['type'] -eq $Type -or ($Type -eq 'ExpandString' -and $previous['type'] -eq 'String')
    $same = $previous['existed'] -and $sameType -and ((ConvertTo-Json @($previous['data']) -Compress) -eq (ConvertTo-Json @($data) -Compress))
    if (-not $same) {
        Write-PolicyValue $Path $Name $data $Type
        $changed = $true
    }
}
[ordered]@{
    previous = $previous
    current = (Read-PolicyValue $Path $Name)
    changed = $changed
} | ConvertTo-Json -Compress -Depth 6
