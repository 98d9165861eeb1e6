"""Property: values passed as parameters are data, never code. Whatever the text (quotes, $(), ;, backticks,
newlines, unicode, very long), the host sees exactly the invocations the script text names, and the value
comes back byte for byte through output, string expansion, a native argument, a hashtable and JSON."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrator.lab.ps import run_script
from tests.lab.ps.conftest import make_host

SCRIPT = """
param($v)
Write-Output $v
"[$v]"
$lines = echoargs $v
$h = @{ value = $v }
$h | ConvertTo-Json -Compress
[pscustomobject]@{ value = $v } | ConvertTo-Json
Get-Thing -Name $v -Count 0
$v.Length
"""

NASTY = st.sampled_from(
    [
        "$(Get-Thing -Name pwned)",
        "'; Get-Thing -Name pwned; '",
        '"; dsregcmd /leave; "',
        "`$(echoargs x)`",
        "${env:COMPUTERNAME}",
        "a\nGet-Thing\nb",
        "@(1,2) | ForEach-Object { Get-Thing }",
        "\u2018smart quotes\u2019 \u201cdouble\u201d",
        "tab\there\r\nwindows line",
        "& echoargs injected",
        "-Count 99",
        "%COMPUTERNAME% ^& calc.exe",
        "$null",
        "",
    ]
)


@settings(max_examples=250, deadline=None)
@given(value=st.one_of(NASTY, st.text(max_size=300), st.text(alphabet="$`'\";(){}@|&\n -", max_size=60)))
@example(value="x" * 100_000)
def test_parameter_values_never_execute(value: str) -> None:
    """The only invocations are the ones written in the script, and every channel returns the value unchanged."""
    host = make_host()
    result = run_script(host, SCRIPT, {"v": value})
    assert result.terminating_error is None, result.terminating_error
    assert result.errors == []
    output = result.output
    assert output[0] == value
    assert output[1] == f"[{value}]"
    assert json.loads(output[2]) == {"value": value}
    assert json.loads(output[3]) == {"value": value}
    assert output[-1] == len(value)
    native_args = [] if value == "" else [value]  # Windows PowerShell 5.1 drops empty native arguments
    assert host.journal == [
        ("native", ("echoargs", native_args, None)),
        ("Get-Thing", {"Name": value, "Count": 0}),
    ]
