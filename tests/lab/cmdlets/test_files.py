"""File-system cmdlets on device.files: content round trips, folders, per-principal TEMP and exact errors."""

from __future__ import annotations

import pytest

from migrator.lab.cmdlets import device_cmdlets
from migrator.lab.executor import DeviceHost
from migrator.lab.model import Device, VFile
from migrator.lab.shell import PowerShellError, PSObject
from tests.lab.cmdlets.conftest import FakeContext, run


def test_set_get_add_content_round_trip(admin: DeviceHost, device: Device) -> None:
    """Set-Content writes lines with CRLF; Get-Content returns lines (or one string with -Raw); Add-Content appends."""
    path = "C:\\ProgramData\\out.txt"
    assert run(admin, "Set-Content", Path=[path], Value=["one", "two"]).errors == []
    assert device.files[path.casefold()].content == "one\r\ntwo\r\n"
    run(admin, "Add-Content", Path=[path], Value=["three"])
    assert run(admin, "Get-Content", Path=[path]).output == ["one", "two", "three"]
    assert run(admin, "gc", Path=[path], Raw=True).output == ["one\r\ntwo\r\nthree\r\n"]
    assert run(admin, "Get-Content", Path=[path], Tail=1).output == ["three"]
    assert run(admin, "Get-Content", Path=[path], TotalCount=2).output == ["one", "two"]


def test_get_content_missing_file(admin: DeviceHost) -> None:
    """A missing file is PathNotFound from GetContentCommand with the full path."""
    result = run(admin, "Get-Content", Path=["C:\\ProgramData\\nope.json"])
    assert result.error.message == "Cannot find path 'C:\\ProgramData\\nope.json' because it does not exist."
    assert result.error.fully_qualified_error_id == "PathNotFound,Microsoft.PowerShell.Commands.GetContentCommand"


def test_set_content_into_missing_folder(admin: DeviceHost) -> None:
    """Writing below a folder that does not exist fails with DirectoryNotFoundException."""
    result = run(admin, "Set-Content", Path=["C:\\Nope\\x.txt"], Value=["x"])
    assert result.error.message == "Could not find a part of the path 'C:\\Nope\\x.txt'."
    assert result.error.exception_type == "System.IO.DirectoryNotFoundException"


def test_objects_are_written_as_powershell_renders_them(admin: DeviceHost, device: Device) -> None:
    """Set-Content writes ToString(): booleans as True, custom objects as @{a=1; b=x}."""
    obj = PSObject([("a", 1), ("b", "x")])
    run(admin, "Set-Content", Path=["C:\\ProgramData\\o.txt"], Value=[True, obj])
    assert device.files["c:\\programdata\\o.txt"].content == "True\r\n@{a=1; b=x}\r\n"


def test_out_file_and_pipeline_writes(admin: DeviceHost, device: Device) -> None:
    """Out-File truncates on the pipeline's first object and appends the rest; -Append keeps old content."""
    spec = device_cmdlets()["out-file"]
    ctx = FakeContext(admin, spec.name)
    device.files["c:\\programdata\\p.txt"] = VFile(path="C:\\ProgramData\\p.txt", content="old\r\n")
    for item in ("a", "b"):
        list(spec.func(ctx, {"FilePath": "C:\\ProgramData\\p.txt", "InputObject": item}))
    assert device.files["c:\\programdata\\p.txt"].content == "a\r\nb\r\n"
    run(admin, "Out-File", FilePath="C:\\ProgramData\\p.txt", InputObject="c", Append=True)
    assert device.files["c:\\programdata\\p.txt"].content == "a\r\nb\r\nc\r\n"


def test_out_file_into_missing_folder_is_terminating(admin: DeviceHost) -> None:
    """Out-File cannot open a file below a missing folder: a terminating FileOpenFailure."""
    with pytest.raises(PowerShellError) as caught:
        run(admin, "Out-File", FilePath="C:\\Nope\\x.txt", InputObject="x")
    assert (
        caught.value.record.fully_qualified_error_id == "FileOpenFailure,Microsoft.PowerShell.Commands.OutFileCommand"
    )


def test_temp_folders_exist_per_principal(admin: DeviceHost, system: DeviceHost, alice: DeviceHost) -> None:
    """$env:TEMP of admin, SYSTEM and a user are existing folders a script can write to."""
    for host in (admin, system, alice):
        temp = host.environment()["TEMP"]
        assert run(host, "Test-Path", Path=[temp], PathType="Container").output == [True]
        assert run(host, "Set-Content", Path=[temp + "\\x.txt"], Value=["1"]).errors == []
    assert system.environment()["TEMP"] == "C:\\Windows\\TEMP"
    assert admin.environment()["TEMP"] == "C:\\Users\\migrator-admin\\AppData\\Local\\Temp"
    assert alice.environment()["TEMP"] == "C:\\Users\\alice\\AppData\\Local\\Temp"


def test_new_item_directory_and_file(admin: DeviceHost) -> None:
    """New-Item creates folders (parents included) and files; existing ones give Windows' errors."""
    [folder] = run(admin, "New-Item", Path=["C:\\ProgramData\\Migrator\\logs"], ItemType="Directory").output
    assert folder.type_names[0] == "System.IO.DirectoryInfo"
    assert folder["FullName"] == "C:\\ProgramData\\Migrator\\logs" and folder["Mode"] == "d-----"
    again = run(admin, "New-Item", Path=["C:\\ProgramData\\Migrator\\logs"], ItemType="Directory")
    assert again.error.message == "An item with the specified name C:\\ProgramData\\Migrator\\logs already exists."
    assert again.error.fully_qualified_error_id == "DirectoryExist,Microsoft.PowerShell.Commands.NewItemCommand"
    assert (
        run(admin, "New-Item", Path=["C:\\ProgramData\\Migrator\\logs"], ItemType="Directory", Force=True).errors == []
    )
    [file] = run(
        admin, "New-Item", Path=["C:\\ProgramData\\Migrator"], Name="a.txt", ItemType="File", Value="hi"
    ).output
    assert file.type_names[0] == "System.IO.FileInfo" and file["Length"] == 2 and file["Extension"] == ".txt"
    exists = run(admin, "New-Item", Path=["C:\\ProgramData\\Migrator\\a.txt"], ItemType="File")
    assert exists.error.message == "The file 'C:\\ProgramData\\Migrator\\a.txt' already exists."


def test_get_child_item_and_remove_item_on_folders(admin: DeviceHost, device: Device) -> None:
    """Get-ChildItem lists a folder's files; Remove-Item needs -Recurse for a non-empty folder."""
    run(admin, "New-Item", Path=["C:\\ProgramData\\M\\sub"], ItemType="Directory")
    run(admin, "Set-Content", Path=["C:\\ProgramData\\M\\a.json"], Value=["{}"])
    names = [c["Name"] for c in run(admin, "Get-ChildItem", Path=["C:\\ProgramData\\M"]).output]
    assert names == ["sub", "a.json"]
    assert run(admin, "gci", Path=["C:\\ProgramData\\M"], Filter="*.json", Name=True).output == ["a.json"]
    assert run(admin, "Get-ChildItem", Path=["C:\\ProgramData\\M"], File=True).output[0]["Name"] == "a.json"
    assert run(admin, "Remove-Item", Path=["C:\\ProgramData\\M"]).errors
    run(admin, "Remove-Item", Path=["C:\\ProgramData\\M"], Recurse=True, Force=True)
    assert run(admin, "Test-Path", Path=["C:\\ProgramData\\M"]).output == [False]
    assert not any(k.startswith("c:\\programdata\\m") for k in device.files)


def test_relative_paths_start_in_the_sessions_location(admin: DeviceHost, system: DeviceHost) -> None:
    """A WinRM session starts in the admin's Documents folder, a SYSTEM process in System32."""
    run(admin, "Set-Content", Path=["rel.txt"], Value=["x"])
    assert run(admin, "Test-Path", Path=["C:\\Users\\migrator-admin\\Documents\\rel.txt"]).output == [True]
    missing = run(system, "Get-Content", Path=["rel.txt"])
    assert missing.error.target_object == "C:\\Windows\\system32\\rel.txt"


def test_env_drive_is_read_from_the_principals_environment(alice: DeviceHost) -> None:
    """Env: items come from the host environment of the principal."""
    assert run(alice, "Test-Path", Path=["env:USERNAME"]).output == [True]
    assert run(alice, "Get-Content", Path=["Env:\\USERNAME"]).output == ["alice"]
    names = [e["Name"] for e in run(alice, "Get-ChildItem", Path=["env:"]).output]
    assert "USERPROFILE" in names
