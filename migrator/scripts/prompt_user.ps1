# migrator: idempotent=false
#
# prompt_user: show a message in one user session with `msg <SessionId> /TIME:<seconds>` (the sign_out_prompt
# library says how: the text on standard input, never an argument). Not idempotent: a repeated prompt is shown
# twice.
param(
    [int]$SessionId,
    [string]$Text,
    [int]$Seconds = 60
)

$ErrorActionPreference = 'Stop'

# migrator: include native
# migrator: include sign_out_prompt

Invoke-SignOutPrompt $SessionId $Text $Seconds | ConvertTo-Json -Compress -Depth 6
