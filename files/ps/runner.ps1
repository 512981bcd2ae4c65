# xcon-runner: the fix-xcon operation dispatcher (Windows PowerShell 2.0 on .NET 2.0).
#
# What it does: runs the operations of one request in order and writes ONE JSON document to stdout:
#   {"version": 1, "results": [{"id": "1", "ok": true, "data": {...}},
#                              {"id": "2", "ok": false, "error": {"category", "hresult", "message"}},
#                              {"id": "3", "ok": false, "skipped": true}]}
# Params:  $Parts = every stdin part (see bootstrap.ps1). Part 0 is this script; the parts between are
#          op scripts whose first line is "# xcon-op: NAME"; the last part is the request JSON
#          {"version": 1, "stop_on_error": true, "ops": [{"id": "1", "op": "NAME", "params": {...}}]}.
# Output:  exit 0 when the request ran (an op's failure is reported in its result; with stop_on_error
#          the ops after a failure are reported as skipped); exit 1 with the reason on stderr when the
#          request cannot be run at all.
# Needs:   only .NET 2.0 (what Windows PowerShell 2.0 needs). JSON is read and written by the small
#          reader/writer below, not by .NET 3.5's JavaScriptSerializer, which a PowerShell 2.0 host
#          need not have.
# Safety:  op parameters are data only; nothing taken from the request is ever run as code.
# Wire:    ASCII both ways, whatever the console code page: the request arrives ASCII (non-ASCII as
#          \uXXXX escapes), and everything written to stdout and stderr is ASCII (the rest escaped).
# The helper functions below (Get-XconParam, ConvertTo-XconHex, ...) are used by the op scripts.
param([string[]]$Parts)

$ErrorActionPreference = 'Stop'
$WarningPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
$ProgressPreference = 'SilentlyContinue'

# Error categories by HRESULT (docs/design.md). Anything else is reported as 'OperationFailed'.
$XconCategories = @{
    '0x80070005' = 'AccessDenied';         '0x80072098' = 'AccessDenied'
    '0x80072030' = 'NoSuchObject';         '0x80071392' = 'AlreadyExists'
    '0x80072071' = 'AlreadyExists';        '0x80072014' = 'ObjectClassViolation'
    '0x8007202F' = 'ConstraintViolation';  '0x80072032' = 'InvalidSyntax'
    '0x80072015' = 'InvalidSyntax';        '0x8007200C' = 'UndefinedAttribute'
    '0x8007203A' = 'ServerUnavailable';    '0x800706BA' = 'ServerUnavailable'
    '0x80070035' = 'ServerUnavailable';    '0x80070427' = 'ServiceError'
    '0x80070424' = 'ServiceError';         '0x80070426' = 'ServiceError'
    '0x8007041D' = 'ServiceError';         '0x80070057' = 'InvalidParameter'
}

function New-XconError([string]$Category, [string]$HResult, [string]$Message) {
    # An exception carrying a design error category and HRESULT; ops throw these.
    $code = [Convert]::ToInt32($HResult.Substring(2), 16)
    $exception = New-Object System.Runtime.InteropServices.COMException -ArgumentList $Message, $code
    $exception.Data['XconCategory'] = $Category
    return $exception
}

function Get-XconFailure($ErrorRecord) {
    # ErrorRecord -> @{category; hresult; message}, using the innermost real cause.
    $e = $ErrorRecord.Exception
    while ($null -ne $e.InnerException -and ($e -is [System.Management.Automation.RuntimeException] -or
           $e -is [System.Reflection.TargetInvocationException])) { $e = $e.InnerException }
    if ($e -is [System.ComponentModel.Win32Exception]) {
        $hr = [Convert]::ToInt32('80070000', 16) -bor ($e.NativeErrorCode -band 0xFFFF)
    } elseif ($e -is [System.Runtime.InteropServices.ExternalException]) {
        $hr = $e.ErrorCode
    } else {
        $hr = [System.Runtime.InteropServices.Marshal]::GetHRForException($e)
    }
    $hresult = '0x{0:X8}' -f $hr
    $category = $e.Data['XconCategory']
    if (-not $category) { $category = $XconCategories[$hresult] }
    if (-not $category -and $e -is [System.ArgumentException]) { $category = 'InvalidParameter' }
    if (-not $category) { $category = 'OperationFailed' }
    return @{ category = [string]$category; hresult = $hresult; message = ([string]$e.Message).Trim() }
}

function Get-XconParam($Params, [string]$Name, $Default = $null, [switch]$Required) {
    # One request parameter; a missing required one fails the op with InvalidParameter.
    if ($Params.ContainsKey($Name) -and $null -ne $Params[$Name]) { return $Params[$Name] }
    if ($Required) { throw (New-XconError 'InvalidParameter' '0x80070057' "parameter '$Name' is required") }
    return $Default
}

function Get-XconLdapServer($Params) {
    # The LDAP host of a dir_* op: SERVER, or SERVER:PORT when the op gives a port (an Exchange 5.5
    # directory on a Windows 2000 domain controller has moved off 389, Q224447 / Q250989).
    $server = [string](Get-XconParam $Params 'server' -Required)
    $port = Get-XconParam $Params 'port' $null
    if ($null -eq $port -or [int]$port -eq 0) { return $server }
    if ([int]$port -lt 1 -or [int]$port -gt 65535) {
        throw (New-XconError 'InvalidParameter' '0x80070057' "port must be 1..65535, not '$port'")
    }
    return $server + ':' + [string][int]$port
}

function ConvertTo-XconHex([byte[]]$Bytes) {
    # Octet string -> lower-case hex text.
    if ($null -eq $Bytes -or $Bytes.Length -eq 0) { return '' }
    return [BitConverter]::ToString($Bytes).Replace('-', '').ToLowerInvariant()
}

function ConvertFrom-XconHex([string]$Hex) {
    # Hex text -> octet string (byte[]); bad hex fails with InvalidSyntax.
    if ($Hex.Length % 2 -ne 0 -or $Hex -notmatch '^[0-9A-Fa-f]*$') {
        throw (New-XconError 'InvalidSyntax' '0x80072015' "not a hex octet string: '$Hex'")
    }
    $bytes = New-Object byte[] ($Hex.Length / 2)
    for ($i = 0; $i -lt $bytes.Length; $i++) { $bytes[$i] = [Convert]::ToByte($Hex.Substring(2 * $i, 2), 16) }
    return ,$bytes
}

function ConvertTo-XconIso([DateTime]$Time) {
    # DateTime -> ISO-8601 UTC text with Z.
    $utc = $Time.ToUniversalTime()
    return $utc.ToString("yyyy'-'MM'-'dd'T'HH':'mm':'ss'Z'", [Globalization.CultureInfo]::InvariantCulture)
}

function Get-XconAdsiPath([string]$Server, [string]$Dn) {
    # LDAP://SERVER/DN for ADSI ('/' inside a DN must be written '\/' in an ADsPath).
    if ($Dn -eq '') { return "LDAP://$Server" }
    return 'LDAP://' + $Server + '/' + $Dn.Replace('/', '\/')
}

# Explicit credentials for the server an op reaches from this host (the op's target_user and
# target_password; set per op by the dispatcher below). Without them the op runs as this session,
# which reaches another machine anonymously unless the logon was CredSSP or delegated Kerberos.
$XconTarget = $null

function New-XconDirectoryEntry([string]$Path) {
    # A DirectoryEntry bound as the session, or with the target's credentials (Secure: NTLM/Kerberos).
    if ($null -eq $XconTarget) { return New-Object System.DirectoryServices.DirectoryEntry ($Path) }
    return New-Object System.DirectoryServices.DirectoryEntry ($Path, $XconTarget.User, $XconTarget.Password,
        [System.DirectoryServices.AuthenticationTypes]::Secure)
}

function Get-XconEntry([string]$Server, [string]$Dn) {
    # A bound DirectoryEntry; fails now (NoSuchObject, AccessDenied, ...) rather than on first use.
    $entry = New-XconDirectoryEntry (Get-XconAdsiPath $Server $Dn)
    $entry.RefreshCache()
    return $entry
}

# WNetAddConnection2 / WNetCancelConnection2 (mpr.dll) instead of net.exe: the password goes to the
# API, never onto a command line that the process list of the management host would show.
$XconMprSource = @'
using System;
using System.Runtime.InteropServices;
public static class XconMpr {
    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    public class NetResource {
        public int Scope; public int Type; public int DisplayType; public int Usage;
        public string LocalName; public string RemoteName; public string Comment; public string Provider;
    }
    [DllImport("mpr.dll", CharSet = CharSet.Unicode)]
    public static extern int WNetAddConnection2(NetResource resource, string password, string user, int flags);
    [DllImport("mpr.dll", CharSet = CharSet.Unicode)]
    public static extern int WNetCancelConnection2(string name, int flags, bool force);
}
'@

function Initialize-XconMpr {
    if (-not ('XconMpr' -as [type])) { Add-Type -TypeDefinition $XconMprSource }
}

function Connect-XconIpc([string]$Server) {
    # An authenticated IPC$ session to the server (event log, counters and service control then use
    # it). Returns $true when this call made it (and must remove it), $false when one existed.
    Initialize-XconMpr
    $share = '\\' + $Server + '\IPC$'
    $resource = New-Object XconMpr+NetResource
    $resource.RemoteName = $share
    $code = [XconMpr]::WNetAddConnection2($resource, $XconTarget.Password, $XconTarget.User, 0)
    if ($code -eq 0) { return $true }
    if ($code -eq 1219) { return $false }   # ERROR_SESSION_CREDENTIAL_CONFLICT: a session exists
    $text = (New-Object System.ComponentModel.Win32Exception $code).Message
    throw (New-XconError 'AccessDenied' '0x8007052E' ("IPC$ session to $share as " + $XconTarget.User + " failed (error $code): " + $text))
}

function Disconnect-XconIpc([string]$Server) {
    $null = [XconMpr]::WNetCancelConnection2('\\' + $Server + '\IPC$', 0, $true)
}

function Get-XconRdnValue([string]$Value) {
    # RFC 4514 escaping of one RDN value.
    $out = New-Object System.Text.StringBuilder
    for ($i = 0; $i -lt $Value.Length; $i++) {
        $c = $Value[$i]
        if (',+"\<>;='.IndexOf($c) -ge 0 -or ($i -eq 0 -and ($c -eq '#' -or $c -eq ' ')) -or
            ($i -eq $Value.Length - 1 -and $c -eq ' ')) { [void]$out.Append('\') }
        [void]$out.Append($c)
    }
    return $out.ToString()
}

$XconSchemaCache = @{}
function Get-XconAttributeSchema([string]$Server, [string]$Name) {
    # @{Multi; Octet} from the directory schema (ADSI schema container); $null when unknown.
    $key = ($Server + '/' + $Name).ToLowerInvariant()
    if (-not $XconSchemaCache.ContainsKey($key)) {
        $info = $null
        try {
            $prop = New-XconDirectoryEntry ("LDAP://$Server/schema/$Name")
            $info = @{ Multi = [bool]$prop.InvokeGet('MultiValued'); Octet = ([string]$prop.InvokeGet('Syntax') -eq 'OctetString') }
        } catch { $info = $null }
        $XconSchemaCache[$key] = $info
    }
    return $XconSchemaCache[$key]
}

function ConvertTo-XconAttributeValue([string]$Server, [string]$Name, $Value) {
    # JSON value -> ADSI value: hex text becomes byte[] for octet-string attributes.
    $schema = Get-XconAttributeSchema $Server $Name
    if ($null -ne $schema -and $schema.Octet -and $Value -is [string]) { return ,(ConvertFrom-XconHex $Value) }
    return $Value
}

function ConvertTo-XconJsonValue($Value) {
    # Any op output -> plain values ConvertTo-XconJson writes as the design says (octets as hex, times ISO).
    if ($null -eq $Value) { return $null }
    $Value = $Value.PSObject.BaseObject
    if ($Value -is [string]) { return $Value }
    if ($Value -is [Enum] -or $Value -is [char]) { return $Value.ToString() }
    if ($Value -is [byte[]]) { return (ConvertTo-XconHex $Value) }
    if ($Value -is [DateTime]) { return (ConvertTo-XconIso $Value) }
    if ($Value -is [ValueType]) { return $Value }
    if ($Value -is [System.Collections.IDictionary]) {
        $map = @{}
        foreach ($k in $Value.Keys) { $map[[string]$k] = ConvertTo-XconJsonValue $Value[$k] }
        return $map
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        $list = New-Object System.Collections.ArrayList
        foreach ($item in $Value) { [void]$list.Add((ConvertTo-XconJsonValue $item)) }
        return ,($list.ToArray())
    }
    return $Value.ToString()
}

# ---- JSON (RFC 8259) without .NET 3.5 -----------------------------------------------------------
$XconNumberTypes = @('System.Byte', 'System.SByte', 'System.Int16', 'System.UInt16', 'System.Int32',
                     'System.UInt32', 'System.Int64', 'System.UInt64', 'System.Single', 'System.Double',
                     'System.Decimal')
$XconJsonNumber = New-Object System.Text.RegularExpressions.Regex '\G-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?'
$XconJsonPlain = New-Object System.Text.RegularExpressions.Regex '[^\x20\x21\x23-\x5B\x5D-\x7E]'

function Skip-XconJsonSpace($S) {
    while ($S.Pos -lt $S.Text.Length -and (" `t`r`n".IndexOf($S.Text[$S.Pos]) -ge 0)) { $S.Pos += 1 }
}

function Read-XconJsonString($S) {
    # At the opening quote; returns the unescaped text.
    $S.Pos += 1
    $out = New-Object System.Text.StringBuilder
    while ($true) {
        if ($S.Pos -ge $S.Text.Length) { throw 'unterminated string in JSON' }
        $c = [string]$S.Text[$S.Pos]
        if ($c -ceq '"') { $S.Pos += 1; return $out.ToString() }
        if ($c -ceq '\') {
            if ($S.Pos + 1 -ge $S.Text.Length) { throw 'unterminated escape in JSON' }
            $e = [string]$S.Text[$S.Pos + 1]
            $S.Pos += 2
            if ($e -ceq 'u') {
                if ($S.Pos + 4 -gt $S.Text.Length -or $S.Text.Substring($S.Pos, 4) -notmatch '^[0-9A-Fa-f]{4}$') {
                    throw "bad \u escape in JSON at offset $($S.Pos)"
                }
                [void]$out.Append([char][Convert]::ToInt32($S.Text.Substring($S.Pos, 4), 16))
                $S.Pos += 4
            } elseif ($e -ceq '"' -or $e -ceq '\' -or $e -ceq '/') { [void]$out.Append($e) }
            elseif ($e -ceq 'n') { [void]$out.Append("`n") }
            elseif ($e -ceq 'r') { [void]$out.Append("`r") }
            elseif ($e -ceq 't') { [void]$out.Append("`t") }
            elseif ($e -ceq 'b') { [void]$out.Append([char]8) }
            elseif ($e -ceq 'f') { [void]$out.Append([char]12) }
            else { throw "bad escape '\$e' in JSON at offset $($S.Pos)" }
            continue
        }
        if ([int][char]$c -lt 32) { throw "control character in a JSON string at offset $($S.Pos)" }
        [void]$out.Append($c)
        $S.Pos += 1
    }
}

function Read-XconJsonValue($S) {
    # One value at $S.Pos: objects become hashtables, arrays object[] (returned whole), numbers
    # int / long / double, true / false / null as themselves.
    Skip-XconJsonSpace $S
    if ($S.Pos -ge $S.Text.Length) { throw 'unexpected end of JSON' }
    $c = [string]$S.Text[$S.Pos]
    if ($c -ceq '{') {
        $S.Pos += 1
        $map = @{}
        Skip-XconJsonSpace $S
        if ($S.Pos -lt $S.Text.Length -and [string]$S.Text[$S.Pos] -ceq '}') { $S.Pos += 1; return $map }
        while ($true) {
            Skip-XconJsonSpace $S
            if ($S.Pos -ge $S.Text.Length -or [string]$S.Text[$S.Pos] -cne '"') { throw "expected a member name in JSON at offset $($S.Pos)" }
            $key = Read-XconJsonString $S
            Skip-XconJsonSpace $S
            if ($S.Pos -ge $S.Text.Length -or [string]$S.Text[$S.Pos] -cne ':') { throw "expected ':' in JSON at offset $($S.Pos)" }
            $S.Pos += 1
            $map[$key] = Read-XconJsonValue $S
            Skip-XconJsonSpace $S
            if ($S.Pos -ge $S.Text.Length) { throw 'unterminated object in JSON' }
            $c = [string]$S.Text[$S.Pos]
            $S.Pos += 1
            if ($c -ceq '}') { return $map }
            if ($c -cne ',') { throw "expected ',' or '}' in JSON at offset $($S.Pos - 1)" }
        }
    }
    if ($c -ceq '[') {
        $S.Pos += 1
        $list = New-Object System.Collections.ArrayList
        Skip-XconJsonSpace $S
        if ($S.Pos -lt $S.Text.Length -and [string]$S.Text[$S.Pos] -ceq ']') { $S.Pos += 1; return ,($list.ToArray()) }
        while ($true) {
            $item = Read-XconJsonValue $S
            [void]$list.Add($item)
            Skip-XconJsonSpace $S
            if ($S.Pos -ge $S.Text.Length) { throw 'unterminated array in JSON' }
            $c = [string]$S.Text[$S.Pos]
            $S.Pos += 1
            if ($c -ceq ']') { return ,($list.ToArray()) }
            if ($c -cne ',') { throw "expected ',' or ']' in JSON at offset $($S.Pos - 1)" }
        }
    }
    if ($c -ceq '"') { return (Read-XconJsonString $S) }
    foreach ($word in 'true', 'false', 'null') {
        if ([string]::CompareOrdinal($S.Text, $S.Pos, $word, 0, $word.Length) -eq 0) {
            $S.Pos += $word.Length
            if ($word -ceq 'true') { return $true }
            if ($word -ceq 'false') { return $false }
            return $null
        }
    }
    $m = $XconJsonNumber.Match($S.Text, $S.Pos)
    if (-not $m.Success -or $m.Length -eq 0) { throw "unexpected character '$c' in JSON at offset $($S.Pos)" }
    $S.Pos += $m.Length
    $culture = [Globalization.CultureInfo]::InvariantCulture
    if (-not $m.Groups[1].Success -and -not $m.Groups[2].Success) {
        $long = [long]0
        if ([long]::TryParse($m.Value, [Globalization.NumberStyles]::AllowLeadingSign, $culture, [ref]$long)) {
            if ($long -ge [int]::MinValue -and $long -le [int]::MaxValue) { return [int]$long }
            return $long
        }
    }
    return [double]::Parse($m.Value, [Globalization.NumberStyles]::Float, $culture)
}

function ConvertFrom-XconJson([string]$Text) {
    # JSON text -> hashtables, object[], strings, numbers, booleans, $null (one document).
    $state = @{ Text = $Text; Pos = 0 }
    $value = Read-XconJsonValue $state
    Skip-XconJsonSpace $state
    if ($state.Pos -ne $Text.Length) { throw "unexpected text after the JSON document at offset $($state.Pos)" }
    return ,$value
}

function Write-XconJsonString([System.Text.StringBuilder]$Out, [string]$Text) {
    # A JSON string in pure ASCII: '"', '\', control and non-ASCII characters escaped.
    [void]$Out.Append('"')
    if (-not $XconJsonPlain.IsMatch($Text)) {
        [void]$Out.Append($Text)
    } else {
        foreach ($ch in $Text.ToCharArray()) {
            $n = [int]$ch
            if ($n -eq 34) { [void]$Out.Append('\"') }
            elseif ($n -eq 92) { [void]$Out.Append('\\') }
            elseif ($n -lt 32 -or $n -gt 126) { [void]$Out.Append('\u').Append($n.ToString('x4')) }
            else { [void]$Out.Append($ch) }
        }
    }
    [void]$Out.Append('"')
}

function Write-XconJson([System.Text.StringBuilder]$Out, $Value) {
    # Any plain value (see ConvertTo-XconJsonValue) as JSON text.
    if ($null -eq $Value) { [void]$Out.Append('null'); return }
    if ($Value -is [bool]) { if ($Value) { [void]$Out.Append('true') } else { [void]$Out.Append('false') }; return }
    if ($Value -is [string] -or $Value -is [char]) { Write-XconJsonString $Out ([string]$Value); return }
    if ($XconNumberTypes -contains $Value.GetType().FullName) {
        if (($Value -is [double] -or $Value -is [single]) -and ([double]::IsNaN($Value) -or [double]::IsInfinity($Value))) {
            [void]$Out.Append('null'); return
        }
        if ($Value -is [double] -or $Value -is [single]) { [void]$Out.Append(([double]$Value).ToString('R', [Globalization.CultureInfo]::InvariantCulture)); return }
        [void]$Out.Append($Value.ToString([Globalization.CultureInfo]::InvariantCulture)); return
    }
    if ($Value -is [System.Collections.IDictionary]) {
        [void]$Out.Append('{')
        $first = $true
        foreach ($key in $Value.Keys) {
            if (-not $first) { [void]$Out.Append(',') }
            $first = $false
            Write-XconJsonString $Out ([string]$key)
            [void]$Out.Append(':')
            Write-XconJson $Out $Value[$key]
        }
        [void]$Out.Append('}')
        return
    }
    if ($Value -is [System.Collections.IEnumerable]) {
        [void]$Out.Append('[')
        $first = $true
        foreach ($item in $Value) {
            if (-not $first) { [void]$Out.Append(',') }
            $first = $false
            Write-XconJson $Out $item
        }
        [void]$Out.Append(']')
        return
    }
    Write-XconJsonString $Out ([string]$Value)
}

function ConvertTo-XconJson($Value) {
    $out = New-Object System.Text.StringBuilder
    Write-XconJson $out $Value
    return $out.ToString()
}

function ConvertTo-XconAscii([string]$Text) {
    # Text for stderr: non-ASCII characters as \uXXXX, whatever the console code page.
    $out = New-Object System.Text.StringBuilder
    foreach ($ch in ([string]$Text).ToCharArray()) {
        if ([int]$ch -gt 126 -or ([int]$ch -lt 32 -and "`r`n`t".IndexOf($ch) -lt 0)) { [void]$out.Append('\u').Append(([int]$ch).ToString('x4')) }
        else { [void]$out.Append($ch) }
    }
    return $out.ToString()
}

# ---- read the request -------------------------------------------------------------------------
try {
    if ($null -eq $Parts -or $Parts.Length -lt 2) { throw 'the payload has no request part' }
    [void][System.Reflection.Assembly]::LoadWithPartialName('System.DirectoryServices')
    $request = ConvertFrom-XconJson $Parts[$Parts.Length - 1]
    if ($request -isnot [System.Collections.IDictionary] -or $request['version'] -ne 1) {
        throw 'unsupported request: expected {"version": 1, ...}'
    }
    $opScripts = @{}
    for ($i = 1; $i -lt $Parts.Length - 1; $i++) {
        $firstLine = ($Parts[$i] -split "`n", 2)[0].Trim()
        if ($firstLine -notmatch '^# xcon-op: ([a-z_]+)$') { throw "payload part $i is not an op script" }
        $opScripts[$matches[1]] = [ScriptBlock]::Create($Parts[$i])
    }
    $stopOnError = $true
    if ($request.ContainsKey('stop_on_error')) { $stopOnError = [bool]$request['stop_on_error'] }
    $ops = $request['ops']
    if ($null -eq $ops) { $ops = @() }
} catch {
    [Console]::Error.WriteLine((ConvertTo-XconAscii ('xcon runner cannot run the request: ' + $_.Exception.Message)))
    exit 1
}

# ---- run the ops in order ---------------------------------------------------------------------
$results = New-Object System.Collections.ArrayList
$failed = $false
foreach ($op in $ops) {
    $result = @{ id = [string]$op['id'] }
    if ($failed -and $stopOnError) {
        $result['ok'] = $false
        $result['skipped'] = $true
        [void]$results.Add($result)
        continue
    }
    try {
        $name = [string]$op['op']
        if (-not $opScripts.ContainsKey($name)) {
            throw (New-XconError 'InvalidParameter' '0x80070057' "op '$name' was not sent with the request")
        }
        $params = $op['params']
        if ($null -eq $params) { $params = @{} }
        $XconTarget = $null
        $ipc = $false
        $targetUser = [string](Get-XconParam $params 'target_user' '')
        if ($targetUser -ne '') {
            $XconTarget = @{ User = $targetUser; Password = [string](Get-XconParam $params 'target_password' '') }
            if (@('event_query', 'perf_counters', 'service', 'reg_read') -contains $name) {
                $ipc = Connect-XconIpc ([string](Get-XconParam $params 'server' -Required))
            }
        }
        try {
            $output = @(& $opScripts[$name] $params)
        } finally {
            if ($ipc) { Disconnect-XconIpc ([string](Get-XconParam $params 'server')) }
            $XconTarget = $null
        }
        $data = $null
        if ($output.Length -gt 0) { $data = $output[$output.Length - 1] }
        $result['data'] = ConvertTo-XconJsonValue $data
        $result['ok'] = $true
    } catch {
        $result['ok'] = $false
        $result['error'] = Get-XconFailure $_
        $failed = $true
    }
    [void]$results.Add($result)
}

# ---- write the answer -------------------------------------------------------------------------
try {
    $text = ConvertTo-XconJson @{ version = 1; results = $results.ToArray() }
    [Console]::Out.Write($text)
    [Console]::Out.Flush()
} catch {
    [Console]::Error.WriteLine((ConvertTo-XconAscii ('xcon runner cannot write the answer: ' + $_.Exception.Message)))
    exit 1
}
exit 0
