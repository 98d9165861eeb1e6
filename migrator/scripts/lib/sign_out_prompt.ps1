# Shared by prompt_user and user_context: ask one session to sign out and back in with `msg <SessionId>
# /TIME:<seconds>` (learn.microsoft.com/windows-server/administration/windows-commands/msg). The text goes to
# msg.exe on standard input (msg reads the message from stdin when none is on its command line), so no part of
# it can become an argument or a switch. Needs the native library included before it.
function Invoke-SignOutPrompt {
    param([int]$SessionId, [string]$Text, [int]$Seconds)
    if ($SessionId -lt 0) { throw 'SessionId must be a session number' }
    if ([string]::IsNullOrWhiteSpace($Text)) { throw 'Text is required' }
    if ($Seconds -lt 1) { $Seconds = 1 }
    if ($Seconds -gt 86400) { $Seconds = 86400 }
    $run = Invoke-Native 'msg.exe' @([string]$SessionId, ('/TIME:' + [string]$Seconds)) $Text
    [ordered]@{
        session_id = $SessionId
        seconds = $Seconds
        exit_code = $run['exit_code']
        text = $run['text']
    }
}
