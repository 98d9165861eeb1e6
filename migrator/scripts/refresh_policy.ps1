# migrator: idempotent=true
#
# refresh_policy: `gpupdate /target:computer /force` so a changed Group Policy (or a removed one) reaches the
# computer policy key now (learn.microsoft.com/windows-server/administration/windows-commands/gpupdate);
# raw text and exit code, parsed by migrator.parse.gpupdate. "N" goes to standard input so a restart/log-off
# question is answered "no" instead of waiting. Idempotent: refreshing again applies the same policy.
param()

$ErrorActionPreference = 'Stop'

# migrator: include native

$run = Invoke-Native 'gpupdate.exe' @('/target:computer', '/force') 'N'
[ordered]@{ text = $run['text']; exit_code = $run['exit_code'] } | ConvertTo-Json -Compress -Depth 6
