param([string]$Dir)
# Runs AS THE USER (scheduled task, Interactive logon type): reads the user's own Hello state and, for
# delete-container, deletes the container only when it is still the expected one, in this same run.
$ErrorActionPreference = 'Stop'
# migrator: include native
$request = Get-Content -LiteralPath (Join-Path $Dir 'request.json') -Raw | ConvertFrom-Json
$me = [System.Security.Principal.WindowsIdentity]::GetCurrent()
$out = [ordered]@{ command = [string]$request.command; user = [string]$me.Name; sid = [string]$me.User.Value }
# The token's groups: Entra Kerberos never issues a partial TGT to members of AzureADKerberos's
# msDS-NeverRevealGroup (by default the Denied RODC Password Replication Group: Domain Admins 512, Domain
# Controllers 516, Cert Publishers 517, Schema Admins 518, Enterprise Admins 519, Group Policy Creator Owners 520,
# Read-only Domain Controllers 521, itself 572).
$out['groups'] = @($me.Groups | ForEach-Object { [string]$_.Value })
$protected = @($out['groups'] | Where-Object { $_ -match '^S-1-5-21-\d+-\d+-\d+-(512|516|517|518|519|520|521|572)$' })
$out['dsregcmd'] = Invoke-Native 'dsregcmd.exe' @('/status')
if ($request.command -eq 'hello-state') {
    $out['klist'] = Invoke-Native 'klist.exe' @()
    $out['klist_cloud_debug'] = Invoke-Native 'klist.exe' @('cloud_debug')
} elseif ($request.command -eq 'delete-container') {
    $out['klist_cloud_debug'] = Invoke-Native 'klist.exe' @('cloud_debug')
    # Certificate trust enrols a certificate whose key is in the Microsoft Passport Key Storage Provider.
    $out['cert_store'] = Invoke-Native 'certutil.exe' @('-user', '-store', 'My')
    $dsText = [string]$out['dsregcmd']['text']
    $keyId = $null
    if ($dsText -match 'NgcKeyId\s*:\s*\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?') {
        $keyId = $Matches[1].ToLowerInvariant()
    }
    $ngcSet = $dsText -match 'NgcSet\s*:\s*YES'
    # -cmatch: the SSO State's 'OnPremTgt' (the partial TGT) and not the Ngc Prerequisite Check's 'OnPremTGT'
    # (the renamed CloudTGT prerequisite on Windows 11 23H2+, windows-facts section 1).
    $cloudEvidence = ([string]$out['klist_cloud_debug']['text'] -match 'Cloud Primary \(Hybrid logon\) TGT available\s*:\s*1') -or ($dsText -cmatch 'OnPremTgt\s*:\s*YES')
    $storeRead = $out['cert_store']['exit_code'] -eq 0
    $certEvidence = $storeRead -and ([string]$out['cert_store']['text'] -match 'Microsoft Passport Key Storage Provider')
    $observed = 'key'
    if ($certEvidence) { $observed = 'cert' } elseif ($cloudEvidence) { $observed = 'cloud' } elseif (-not $storeRead) { $observed = 'key-or-cert' }
    $expectedKey = ([string]$request.expected_key_id).Trim().TrimStart('{').TrimEnd('}').ToLowerInvariant()
    $expectedTrust = [string]$request.expected_trust
    $refusals = New-Object System.Collections.ArrayList
    if ($protected.Count -gt 0) { [void]$refusals.Add('the account is in a group Microsoft Entra Kerberos refuses (no cloud TGT): it could not provision again') }
    if (-not $ngcSet -or $null -eq $keyId) { [void]$refusals.Add('no Hello container') }
    elseif ($keyId -ne $expectedKey) { [void]$refusals.Add('container key id changed') }
    if ($expectedTrust -eq 'cert' -and ($cloudEvidence -or ($storeRead -and -not $certEvidence))) { [void]$refusals.Add('container is no longer certificate trust') }
    if ($expectedTrust -eq 'key' -and ($cloudEvidence -or $certEvidence)) { [void]$refusals.Add('container is no longer key trust') }
    if ($expectedTrust -eq 'cloud' -and -not $cloudEvidence) { [void]$refusals.Add('container shows no cloud Kerberos trust') }
    $out['guard'] = [ordered]@{
        ngc_set = [bool]$ngcSet
        key_id = $keyId
        expected_key_id = $expectedKey
        expected_trust = $expectedTrust
        observed_trust = $observed
        cert_store_read = [bool]$storeRead
        refusals = $refusals
    }
    $out['deleted'] = $false
    if ($refusals.Count -eq 0) {
        $out['certutil'] = Invoke-Native 'certutil.exe' @('-deletehellocontainer')
        $out['deleted'] = $out['certutil']['exit_code'] -eq 0
    }
} else {
    $out['error'] = 'unknown command'
}
$out | ConvertTo-Json -Compress -Depth 6 | Set-Content -LiteralPath (Join-Path $Dir 'result.json') -Encoding UTF8
