# fix-xcon bootstrap (Windows PowerShell 2.0). Sent as -EncodedCommand; everything else arrives on stdin.
# stdin: UTF-8 parts separated by four NUL characters: runner.ps1, libraries, op scripts, request JSON.
# Runs part 0 (the runner) as a script block and hands it all parts; the runner writes the JSON answer.
$xconParts = [Console]::In.ReadToEnd().Split([string[]]@("`0`0`0`0"), [StringSplitOptions]::None)
& ([ScriptBlock]::Create($xconParts[0])) $xconParts
