# Shared: run a native tool and capture its text and exit code. Native tools write errors to stderr: with
# $ErrorActionPreference 'Stop' PowerShell 5.1 would turn the first stderr line into a terminating error, so
# both streams are captured as text with 'Continue' here. -InputText, when given, goes to the tool's stdin.
function Invoke-Native {
    param([string]$FilePath, [string[]]$Arguments, [string]$InputText)
    $ErrorActionPreference = 'Continue'
    if ($PSBoundParameters.ContainsKey('InputText')) {
        $lines = $InputText | & $FilePath @Arguments 2>&1
    } else {
        $lines = & $FilePath @Arguments 2>&1
    }
    $code = $LASTEXITCODE
    $text = @(
        foreach ($line in $lines) {
            if ($line -is [System.Management.Automation.ErrorRecord]) { $line.Exception.Message } else { [string]$line }
        }
    ) -join "`r`n"
    [ordered]@{ text = $text; exit_code = $code }
}
