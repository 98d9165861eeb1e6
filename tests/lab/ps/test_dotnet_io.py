"""System.IO, hashing, BitConverter, enum casts, $MyInvocation, $ExecutionContext and $input: the .NET and engine
surface pypsrp's copy.ps1 / fetch.ps1 need, on a device host (files) and on the fake host (no files)."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pypsrp
import pytest

from migrator.lab.executor import DeviceHost, LabExecutor
from migrator.lab.model import Device, VFile
from migrator.lab.ps import PSRunspace, run_script
from migrator.lab.shell import Command, InvocationResult
from migrator.lab.windows import Lab
from tests.lab.conftest import make_device

PWSH_SCRIPTS = Path(pypsrp.__file__ or "").parent / "pwsh_scripts"
TEMP = "C:\\Users\\migrator-admin\\AppData\\Local\\Temp"


@pytest.fixture
def device() -> Device:
    return make_device()


@pytest.fixture
def lab(lab_of: Callable[..., Lab], device: Device) -> Lab:
    return lab_of(device)


@pytest.fixture
def admin(lab: Lab, device: Device) -> DeviceHost:
    return DeviceHost(lab, device, lab.admin_principal(device))


@pytest.fixture
def on_device(admin: DeviceHost) -> Callable[..., InvocationResult]:
    def run(script: str, parameters: dict[str, Any] | None = None, input: list[Any] | None = None) -> InvocationResult:
        return run_script(admin, script, parameters, input)

    return run


def _ok(result: InvocationResult) -> list[Any]:
    assert result.terminating_error is None, result.terminating_error
    assert not result.errors, result.errors
    return result.output


# ---- language pieces -------------------------------------------------------------------------------------


def test_named_blocks_on_one_line_and_input_per_object(out: Any) -> None:
    """``begin {} process {} end {}`` written as copy.ps1 does (``} process {``) runs as named blocks; in
    process $input is the current object."""
    text = "begin { $seen = @() } process {\n $seen += \"[$input]\"\n} end { $seen -join ',' }"
    assert out(text, input=["a", "b", "c"]) == ["[a],[b],[c]"]


def test_input_is_empty_in_process_without_pipeline_input(out: Any) -> None:
    """Without input, a process block runs once and $input holds nothing."""
    assert out("process { @($input).Count }") == [0]


def test_myinvocation_unbound_arguments(runspace: PSRunspace) -> None:
    """A script without param() sees every argument in $MyInvocation.UnboundArguments (and $args)."""
    text = "$MyInvocation.UnboundArguments[1]; $MyInvocation.UnboundArguments.Count; $args[0]"
    result = runspace.invoke([Command(text, parameters=((None, "x"), (None, True)))])
    assert _ok(result) == [True, 2, "x"]


def test_myinvocation_of_a_function(out: Any) -> None:
    """In a function, MyCommand.Name is the function and leftovers are unbound; BoundParameters are bound."""
    text = (
        'function Get-It { param($A) "$($MyInvocation.MyCommand.Name)|$($MyInvocation.BoundParameters.A)|'
        '$($MyInvocation.UnboundArguments)" }; Get-It 1 2 3'
    )
    assert out(text) == ["Get-It|1|2 3"]


def test_myinvocation_unknown_member_is_not_guessed(ps: Any) -> None:
    """A member of InvocationInfo the lab does not model refuses instead of answering $null."""
    result = ps("$MyInvocation.HistoryId")
    assert result.terminating_error is not None
    assert result.terminating_error.fully_qualified_error_id == "NotModelledByLab"


def test_binding_flags_cast(out: Any) -> None:
    """``[System.Reflection.BindingFlags]'NonPublic, Instance'`` is the flags value 36, printed in .NET order."""
    text = "$f = [System.Reflection.BindingFlags]'NonPublic, Instance'; [int]$f.value__; \"$f\"; $f.GetType().FullName"
    assert out(text) == [36, "Instance, NonPublic", "System.Reflection.BindingFlags"]
    assert out("[Reflection.BindingFlags]::Public.value__") == [16]


def test_enum_casts_and_their_errors(ps: Any, out: Any) -> None:
    """Casting text or numbers to an enum finds the member; an unknown name or value fails like PowerShell."""
    assert out('"$([System.StringComparison]\'ordinalignorecase\')"; "$([System.DayOfWeek]2)"') == [
        "OrdinalIgnoreCase",
        "Tuesday",
    ]
    bad_name = ps("[System.Reflection.BindingFlags]'Instance, Bogus'").errors[0]
    assert bad_name.message.startswith(
        'Cannot convert value "Instance, Bogus" to type "System.Reflection.BindingFlags". Error: "Unable to match '
        "the identifier name Bogus to a valid enumerator name."
    )
    bad_value = ps("[System.DayOfWeek]9").errors[0]
    assert bad_value.message.startswith(
        'Cannot convert value "9" to type "System.DayOfWeek" due to enumeration values that are not valid.'
    )


def test_host_has_no_internal_members_to_reflect_on(out: Any, ps: Any) -> None:
    """On the lab host, reflection for a non-public property finds nothing, so GetValue fails catchably."""
    text = (
        "$flags = [System.Reflection.BindingFlags]'NonPublic, Instance'\n"
        "$null -eq $Host.GetType().GetProperty('ExternalHost', $flags)\n"
        "try { $Host.GetType().GetProperty('ExternalHost', $flags).GetValue($Host, $null) } "
        "catch { $_.Exception.Message }"
    )
    assert out(text) == [True, "You cannot call a method on a null-valued expression."]
    public = ps("$Host.GetType().GetProperty('Name', [System.Reflection.BindingFlags]'Public, Instance')")
    assert public.terminating_error is not None
    assert public.terminating_error.fully_qualified_error_id == "NotModelledByLab"


def test_discard_redirection_of_a_method_result(out: Any) -> None:
    """``$x.Method() > $null`` runs the method and writes nothing."""
    assert out("$l = [System.Collections.ArrayList]::new(); $l.Add(1) > $null; $l.Count") == [1]


# ---- bytes, hashing, BitConverter ------------------------------------------------------------------------


def test_byte_buffer_from_new_object(out: Any) -> None:
    """``New-Object byte[] n`` is n zero bytes, typed System.Byte[]; ``[int[]]::new(2)`` holds zeros."""
    assert out("$b = New-Object -TypeName byte[] -ArgumentList 3; $b.Length; $b.GetType().FullName; $b[2]") == [
        3,
        "System.Byte[]",
        0,
    ]
    assert out("([int[]]::new(2)) -join ','") == ["0,0"]


def test_sha1_transform_blocks_match_hashlib(out: Any) -> None:
    """TransformBlock over chunks then TransformFinalBlock gives the SHA1 of the whole; BitConverter prints it."""
    data = bytes(range(256)) * 3
    chunks = [base64.b64encode(data[i : i + 100]).decode() for i in range(0, len(data), 100)]
    text = (
        "param($Chunks)\n"
        "$algo = [System.Security.Cryptography.SHA1CryptoServiceProvider]::Create()\n"
        "foreach ($c in $Chunks) { $b = [Convert]::FromBase64String($c); "
        "$algo.TransformBlock($b, 0, $b.Length, $b, 0) > $null }\n"
        "$algo.TransformFinalBlock($b, 0, 0) > $null\n"
        "[System.BitConverter]::ToString($algo.Hash).Replace('-', '').ToLowerInvariant()\n"
        "$algo.GetType().FullName"
    )
    expected = [hashlib.sha1(data).hexdigest(), "System.Security.Cryptography.SHA1CryptoServiceProvider"]
    assert out(text, {"Chunks": chunks}) == expected


def test_hash_before_final_block_and_compute_hash(ps: Any, out: Any) -> None:
    """Reading Hash before the final block fails as .NET does; ComputeHash hashes in one call (SHA256 too)."""
    early = ps("$a = [Security.Cryptography.SHA1]::Create(); $a.Hash").errors[0]
    assert early.message == 'Exception getting "Hash": "Hash must be finalized before the hash value is retrieved."'
    text = "[BitConverter]::ToString([Security.Cryptography.SHA256]::Create().ComputeHash([byte[]](1,2,3)))"
    assert out(text) == ["-".join(f"{b:02X}" for b in hashlib.sha256(b"\x01\x02\x03").digest())]
    assert out("[BitConverter]::ToString([byte[]](0, 171, 255), 1)") == ["AB-FF"]


# ---- files on a device -----------------------------------------------------------------------------------


def test_temp_file_name_creates_an_empty_file(on_device: Any, device: Device) -> None:
    """GetTempFileName makes a new empty tmpXXXX.tmp in the principal's TEMP, a different one each call."""
    first, second = _ok(on_device("[System.IO.Path]::GetTempFileName(); [IO.Path]::GetTempFileName()"))
    for path in (first, second):
        assert path.startswith(TEMP + "\\tmp") and path.endswith(".tmp")
        assert device.files[path.casefold()].raw() == b""
    assert first != second


def test_file_stream_write_then_read_back(on_device: Any, device: Device) -> None:
    """File.Create + Write + Close stores exact bytes; FileInfo and OpenRead + Read give them back."""
    text = (
        "$fd = [System.IO.File]::Create('C:\\ProgramData\\b.bin')\n"
        "$data = [byte[]](0, 200, 13, 10, 255)\n"
        "$fd.Write($data, 0, 3); $fd.Write($data, 3, 2); $fd.Length; $fd.Close()\n"
        "$info = New-Object -TypeName System.IO.FileInfo -ArgumentList 'C:\\ProgramData\\b.bin'\n"
        "$info.Exists; $info.Length; $info.FullName\n"
        "$fs = $info.OpenRead(); $buf = New-Object byte[] 5\n"
        "$fs.Read($buf, 0, 5); $fs.Read($buf, 0, 5); $fs.Dispose()\n"
        "[Convert]::ToBase64String($buf)"
    )
    output = _ok(on_device(text))
    assert output == [5, True, 5, "C:\\ProgramData\\b.bin", 5, 0, base64.b64encode(b"\x00\xc8\r\n\xff").decode()]
    assert device.files["c:\\programdata\\b.bin"].raw() == b"\x00\xc8\r\n\xff"


def test_closed_and_read_only_streams(on_device: Any) -> None:
    """A closed stream refuses access; a read-only one refuses writes (.NET messages, wrapped by PowerShell)."""
    text = (
        "$fd = [IO.File]::Create('C:\\ProgramData\\c.bin'); $fd.Close()\n"
        "try { $fd.Write([byte[]](1), 0, 1) } catch { $_.Exception.Message }\n"
        "$ro = [IO.File]::OpenRead('C:\\ProgramData\\c.bin')\n"
        "try { $ro.Write([byte[]](1), 0, 1) } catch { $_.Exception.Message }\n"
        "try { $ro.Write([byte[]](1), 0, 2) } catch { $_.Exception.Message }"
    )
    assert _ok(on_device(text)) == [
        'Exception calling "Write" with "3" argument(s): "Cannot access a closed file."',
        'Exception calling "Write" with "3" argument(s): "Stream does not support writing."',
        'Exception calling "Write" with "3" argument(s): "Offset and length were out of bounds for the array or '
        'count is greater than the number of elements from index to the end of the source collection."',
    ]


def test_move_delete_exists(on_device: Any, device: Device) -> None:
    """File.Move renames (keeping bytes), refuses an existing target; Delete of a missing file is no error."""
    device.files["c:\\programdata\\a.txt"] = VFile(path="C:\\ProgramData\\a.txt", content="one")
    device.files["c:\\programdata\\taken.txt"] = VFile(path="C:\\ProgramData\\taken.txt", content="two")
    text = (
        "[IO.File]::Move('C:\\ProgramData\\a.txt', 'C:\\ProgramData\\moved.txt')\n"
        "[IO.File]::Exists('C:\\ProgramData\\a.txt'); [IO.File]::Exists('C:\\ProgramData\\moved.txt')\n"
        "try { [IO.File]::Move('C:\\ProgramData\\moved.txt', 'C:\\ProgramData\\taken.txt') } "
        "catch { $_.Exception.Message }\n"
        "[IO.File]::Delete('C:\\ProgramData\\taken.txt'); [IO.File]::Delete('C:\\ProgramData\\never.txt')\n"
        "[IO.File]::Exists('C:\\ProgramData\\taken.txt'); [IO.File]::Exists('C:\\ProgramData'); [IO.File]::Exists('')"
    )
    assert _ok(on_device(text)) == [
        False,
        True,
        'Exception calling "Move" with "2" argument(s): "Cannot create a file when that file already exists."',
        False,
        False,
        False,
    ]
    assert device.files["c:\\programdata\\moved.txt"].content == "one"


def test_io_errors_name_the_path(on_device: Any) -> None:
    """Missing folders, missing files and folders used as files fail with .NET's messages."""
    text = (
        "try { [IO.File]::Create('C:\\Nope\\x.bin') } catch { $_.Exception.Message }\n"
        "try { [IO.File]::OpenRead('C:\\ProgramData\\none.bin') } catch { $_.Exception.Message }\n"
        "try { [IO.File]::Create('C:\\ProgramData') } catch { $_.Exception.Message }\n"
        "try { (New-Object IO.FileInfo 'C:\\ProgramData\\none.bin').Length } catch { $_.Exception.Message }"
    )
    assert _ok(on_device(text)) == [
        'Exception calling "Create" with "1" argument(s): "Could not find a part of the path \'C:\\Nope\\x.bin\'."',
        'Exception calling "OpenRead" with "1" argument(s): "Could not find file \'C:\\ProgramData\\none.bin\'."',
        'Exception calling "Create" with "1" argument(s): "Access to the path \'C:\\ProgramData\' is denied."',
        'Exception getting "Length": "Could not find file \'C:\\ProgramData\\none.bin\'."',
    ]


def test_relative_dotnet_paths_are_not_guessed(on_device: Any) -> None:
    """A relative path would resolve against the process directory the lab does not model: refused."""
    result = on_device("[IO.File]::Exists('x.txt')")
    assert result.terminating_error is not None
    assert result.terminating_error.fully_qualified_error_id == "NotModelledByLab"


def test_unresolved_provider_path(on_device: Any) -> None:
    """GetUnresolvedProviderPathFromPSPath: relative to the session's location, drives and provider paths."""
    text = (
        "$p = $ExecutionContext.SessionState.Path\n"
        "$p.GetUnresolvedProviderPathFromPSPath('out\\x.bin')\n"
        "$p.GetUnresolvedProviderPathFromPSPath('C:/ProgramData/../Temp/y.bin')\n"
        "$p.GetUnresolvedProviderPathFromPSPath('HKLM:\\SOFTWARE\\Contoso')\n"
        "try { $p.GetUnresolvedProviderPathFromPSPath('Q:\\x') } catch { $_.Exception.Message }"
    )
    assert _ok(on_device(text)) == [
        "C:\\Users\\migrator-admin\\Documents\\out\\x.bin",
        "C:\\Temp\\y.bin",
        "HKEY_LOCAL_MACHINE\\SOFTWARE\\Contoso",
        'Exception calling "GetUnresolvedProviderPathFromPSPath" with "1" argument(s): "Cannot find drive. A drive '
        "with the name 'Q' does not exist.\"",
    ]


def test_expand_environment_variables_on_the_device(on_device: Any) -> None:
    """%ProgramData% and %TEMP% expand from the principal's environment; unknown names stay as written."""
    text = "[Environment]::ExpandEnvironmentVariables('%ProgramData%\\x;%TEMP%;%NOPE%')"
    assert _ok(on_device(text)) == [f"C:\\ProgramData\\x;{TEMP};%NOPE%"]


def test_hosts_without_files_refuse_system_io(ps: Any) -> None:
    """The fake host has no file system: System.IO is NotSupportedByLab, never a made-up answer."""
    for text in ("[IO.File]::Exists('C:\\x')", "[IO.Path]::GetTempFileName()", "New-Object IO.FileInfo 'C:\\x'"):
        result = ps(text)
        assert result.terminating_error is not None, text
        assert result.terminating_error.fully_qualified_error_id == "NotModelledByLab", text


# ---- pypsrp's scripts in a runspace ----------------------------------------------------------------------


def test_copy_and_fetch_scripts_in_a_runspace(lab: Lab, device: Device) -> None:
    """copy.ps1 with base64 chunks then the hash as input stores the bytes; fetch.ps1 returns them and the hash."""
    data = bytes(range(256)) * 40
    chunks = [base64.b64encode(data[i : i + 3000]).decode() for i in range(0, len(data), 3000)]
    chunks.append(base64.b64encode(hashlib.sha1(data).hexdigest().encode()).decode())
    runspace = LabExecutor(lab).open_runspace(device.name, lab.admin_principal(device))
    copy = (PWSH_SCRIPTS / "copy.ps1").read_text()
    result = runspace.invoke([Command(copy, parameters=((None, "%ProgramData%\\d.bin"), (None, True)))], chunks)
    assert result.output == ["C:\\ProgramData\\d.bin"] and not result.errors
    assert result.warnings[0].startswith(
        "Failed to disable MaximumAllowedMemory input size: You cannot call a method on a null-valued expression."
    )
    assert device.files["c:\\programdata\\d.bin"].raw() == data
    fetch = (PWSH_SCRIPTS / "fetch.ps1").read_text()
    result = runspace.invoke([Command(fetch, parameters=((None, "C:\\ProgramData\\d.bin"), (None, False)))])
    assert not result.errors
    assert result.output == [base64.b64encode(data).decode(), hashlib.sha1(data).hexdigest()]


def test_copy_script_detects_a_hash_mismatch(lab: Lab, device: Device) -> None:
    """A wrong trailing hash fails the copy with copy.ps1's message and leaves no file behind."""
    runspace = LabExecutor(lab).open_runspace(device.name, lab.admin_principal(device))
    chunks = [base64.b64encode(b"abc").decode(), base64.b64encode(b"0" * 40).decode()]
    copy = (PWSH_SCRIPTS / "copy.ps1").read_text()
    result = runspace.invoke([Command(copy, parameters=((None, "C:\\ProgramData\\e.bin"), (None, False)))], chunks)
    assert result.terminating_error is not None
    assert result.terminating_error.message.startswith("Transport failure, hash mismatch")
    assert not [key for key in device.files if key.startswith(("c:\\programdata\\e.bin", TEMP.casefold() + "\\"))]


# ---- binary files in the device model --------------------------------------------------------------------


def test_binary_file_round_trips_through_json() -> None:
    """A file stored as bytes keeps them exactly through the fleet's JSON form; text files dump as before."""
    entry = VFile(path="C:\\x.bin")
    entry.set_bytes(bytes(range(256)))
    dumped = entry.model_dump(mode="json")
    assert "content" not in dumped and base64.b64decode(dumped["data"]) == bytes(range(256))
    loaded = VFile.model_validate(json.loads(json.dumps(dumped)))
    assert loaded == entry and loaded.raw() == bytes(range(256))
    assert VFile(path="C:\\t.txt", content="x").model_dump(mode="json") == {
        "path": "C:\\t.txt",
        "content": "x",
        "modified": None,
        "is_directory": False,
    }


def test_binary_file_reads_as_windows_text(on_device: Any, device: Device) -> None:
    """Text readers see copied bytes as Windows PowerShell 5.1 decodes them (BOM, else ANSI); Length counts bytes;
    writing text makes it a text file again."""
    entry = VFile(path="C:\\ProgramData\\w.txt")
    entry.set_bytes(b"\xef\xbb\xbfcaf\xc3\xa9\r\nline2\r\n")
    device.files["c:\\programdata\\w.txt"] = entry
    ansi = VFile(path="C:\\ProgramData\\a.txt")
    ansi.set_bytes(b"\x80\x81 \xe9")
    device.files["c:\\programdata\\a.txt"] = ansi
    text = (
        "Get-Content C:\\ProgramData\\w.txt; (Get-Item C:\\ProgramData\\w.txt).Length\n"
        "Get-Content C:\\ProgramData\\a.txt -Raw"
    )
    assert _ok(on_device(text)) == ["caf\u00e9", "line2", 17, "\u20ac\x81 \u00e9"]
    _ok(on_device("Set-Content C:\\ProgramData\\w.txt 'plain'"))
    assert device.files["c:\\programdata\\w.txt"].data is None
    assert device.files["c:\\programdata\\w.txt"].content == "plain\r\n"


def test_content_cmdlets_with_byte_encoding(on_device: Any, device: Device) -> None:
    """Set-Content/Add-Content -Encoding Byte write exact bytes; Get-Content -Encoding Byte reads numbers back."""
    text = (
        "Set-Content -Path C:\\ProgramData\\n.bin -Value ([byte[]](0, 255, 10)) -Encoding Byte\n"
        "Add-Content -Path C:\\ProgramData\\n.bin -Value 7 -Encoding Byte\n"
        "(Get-Content C:\\ProgramData\\n.bin -Encoding Byte) -join ','\n"
        "(Get-Content C:\\ProgramData\\n.bin -Encoding Byte -Raw).GetType().FullName"
    )
    assert _ok(on_device(text)) == ["0,255,10,7", "System.Byte[]"]
    assert device.files["c:\\programdata\\n.bin"].raw() == b"\x00\xff\n\x07"
    bad = on_device("Set-Content -Path C:\\ProgramData\\n.bin -Value 'x' -Encoding Byte")
    assert bad.errors[0].message == 'Cannot convert value "x" to type "System.Byte".'


def test_transform_block_output_and_one_shot_file_calls(on_device: Any, device: Device) -> None:
    """TransformBlock copies into a separate output buffer; WriteAllBytes/ReadAllBytes round trip; an abstract
    hash class has no constructor."""
    text = (
        "$a = [Security.Cryptography.SHA1]::Create(); $out = New-Object byte[] 4\n"
        "$a.TransformBlock([byte[]](9, 8, 7), 1, 2, $out, 1); $out -join ','\n"
        "[IO.File]::WriteAllBytes('C:\\ProgramData\\w.bin', [byte[]](1, 2)); [IO.File]::ReadAllBytes("
        "'C:\\ProgramData\\w.bin').Length\n"
        "try { [Security.Cryptography.SHA1]::new() } catch { $_.Exception.Message }\n"
        "try { [BitConverter]::ToString([byte[]](1), 0, 2) } catch { $_.FullyQualifiedErrorId }"
    )
    assert _ok(on_device(text)) == [
        2,
        "0,8,7,0",
        2,
        "Method invocation failed because [System.Security.Cryptography.SHA1] does not contain a method named 'new'.",
        "ArgumentException",
    ]
    assert device.files["c:\\programdata\\w.bin"].raw() == b"\x01\x02"
