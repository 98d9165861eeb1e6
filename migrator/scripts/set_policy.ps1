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

function Assert-PolicyLocation {
    # Only the Windows Hello for Business policy keys may be read or written by these scripts
    # (windows-facts §2: GPO computer/user keys and the PassportForWork CSP's MDM keys).
    param([string]$Path, [string]$Name)
    $allowed = @(
        '^HKLM:\\SOFTWARE\\Policies\\Microsoft\\PassportForWork(\\[A-Za-z0-9 ._-]+)*$',
        '^HKLM:\\SOFTWARE\\Microsoft\\Policies\\PassportForWork(\\[A-Za-z0-9 ._{}-]+)*$',
        '^Registry::HKEY_USERS\\S-1-[0-9-]+\\SOFTWARE\\Policies\\Microsoft\\PassportForWork(\\[A-Za-z0-9 ._-]+)*$'
    )
    $ok = $false
    foreach ($pattern in $allowed) { if ($Path -match $pattern) { $ok = $true } }
    if (-not $ok -or $Path -match '\\\.\.?(\\|$)') { throw 'Path is not a Windows Hello for Business policy key' }
    if ($Name -notmatch '^[A-Za-z0-9_.-]{1,128}$') { throw 'Name is not a policy value name' }
}

function Read-PolicyValue {
    # (existed, type, data) of one value; the type is inferred from the data's .NET type as the registry
    # provider returns it (REG_EXPAND_SZ comes back expanded, so it reads as String).
    param([string]$Path, [string]$Name)
    $record = [ordered]@{ path = $Path; name = $Name; existed = $false; type = $null; data = $null }
    if (-not (Test-Path -LiteralPath $Path)) { return $record }
    $item = Get-ItemProperty -LiteralPath $Path -ErrorAction SilentlyContinue
    if ($null -eq $item) { return $record }
    $property = $item.PSObject.Properties | Where-Object { $_.Name -eq $Name }
    if ($null -eq $property) { return $record }
    $data = $property.Value
    $type = 'String'
    if ($data -is [int]) { $type = 'DWord' }
    elseif ($data -is [long]) { $type = 'QWord' }
    elseif ($data -is [byte[]]) { $type = 'Binary' }
    elseif ($data -is [array]) { $type = 'MultiString' }
    $record['existed'] = $true
    $record['type'] = $type
    $record['data'] = $data
    return $record
}

function ConvertTo-RegistryData {
    param($Value, [string]$Type)
    switch ($Type) {
        'DWord' { return [int]$Value }
        'QWord' { return [long]$Value }
        'String' { return [string]$Value }
        'ExpandString' { return [string]$Value }
        'MultiString' { return [string[]]@($Value) }
        'Binary' { return [byte[]]@($Value) }
    }
    throw 'Type must be DWord, QWord, String, ExpandString, MultiString or Binary'
}

function Write-PolicyValue {
    param([string]$Path, [string]$Name, $Data, [string]$Type)
    if (-not (Test-Path -LiteralPath $Path)) { New-Item -Path $Path -Force | Out-Null }
    New-ItemProperty -LiteralPath $Path -Name $Name -PropertyType $Type -Value $Data -Force | Out-Null
}

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
