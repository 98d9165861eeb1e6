# Shared by set_policy, snapshot_policy and restore_policy: where Hello policy values may be read or
# written, and how one value is read and written. Spliced in by migrator.scripts.load at the include line.
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
