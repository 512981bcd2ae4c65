# xcon-runner: the fix-xcon operation dispatcher (Windows PowerShell 2.0 on .NET 2.0).
#
# What it does: runs the operations of one request in order and writes ONE JSON document to stdout:
#   {"version": 1, "results": [{"id": "1", "ok": true, "data": {...}},
#                              {"id": "2", "ok": false, "error": {"category", "hresult", "message"}},
#                              {"id": "3", "ok": false, "skipped": true}]}
# Params:  $Parts = every stdin part (see bootstrap.ps1). Part 0 is this script; then the libraries
#          (first line "# xcon-lib: NAME", dot-sourced here before the request is read: lib_json.ps1
#          is required), then the op scripts (first line "# xcon-op: NAME"); the last part is the
#          request JSON {"version": 1, "stop_on_error": true, "ops": [{"id": "1", "op": "NAME", ...}]}.
# Output:  exit 0 when the request ran (an op's failure is reported in its result; with stop_on_error
#          the ops after a failure are reported as skipped); exit 1 with the reason on stderr when the
#          request cannot be run at all.
# Needs:   only .NET 2.0 (what Windows PowerShell 2.0 needs). JSON is read and written by the small
#          reader/writer of lib_json.ps1, not by .NET 3.5's JavaScriptSerializer, which a PowerShell
#          2.0 host need not have.
# Safety:  op parameters are data only; nothing taken from the request is ever run as code.
# Wire:    ASCII both ways, whatever the console code page: the request arrives ASCII (non-ASCII as
#          \uXXXX escapes), and everything written to stdout and stderr is ASCII (the rest escaped).
# The helper functions below (Get-XconParam, ConvertTo-XconHex, ...) are used by the op scripts.
param([string[]]$Parts)

$ErrorActionPreference = 'Stop'
$WarningPreference = 'SilentlyContinue'
$VerbosePreference = 'SilentlyContinue'
$ProgressPreference = 'SilentlyContinue'

function New-XconError([string]$Category, [string]$HResult, [string]$Message) {
    # An exception carrying a design error category and HRESULT; ops throw these.
    $code = [Convert]::ToInt32($HResult.Substring(2), 16)
    $exception = New-Object System.Runtime.InteropServices.COMException -ArgumentList $Message, $code
    $exception.Data['XconCategory'] = $Category
    return $exception
}

function Get-XconFailure($ErrorRecord) {
    # ErrorRecord -> @{category; type; hresult; native_error; message} of the INNERMOST exception
    # (EventLog and ServiceController wrap the Win32Exception that says why in an
    # InvalidOperationException). What it means is decided by the controller; category only when
    # an op raised one itself (New-XconError).
    $e = $ErrorRecord.Exception
    $outer = $null
    while ($null -ne $e.InnerException) {
        if ($null -eq $outer -and $e -isnot [System.Management.Automation.RuntimeException]) { $outer = $e.Message }
        $e = $e.InnerException
    }
    $native = $null
    if ($e -is [System.ComponentModel.Win32Exception]) { $native = $e.NativeErrorCode }
    if ($e -is [System.Runtime.InteropServices.ExternalException]) { $hr = $e.ErrorCode }
    else { $hr = [System.Runtime.InteropServices.Marshal]::GetHRForException($e) }
    $message = ([string]$e.Message).Trim()
    if ($null -ne $outer -and $outer -ne $e.Message) { $message = ([string]$outer).Trim() + ' ' + $message }
    return @{ category = $e.Data['XconCategory']; type = $e.GetType().FullName; hresult = ('0x{0:X8}' -f $hr)
              native_error = $native; message = $message }
}

function Get-XconParam($Params, [string]$Name, $Default = $null, [switch]$Required) {
    # One request parameter; a missing required one, or a required text that is empty (an empty
    # dn would bind the server's root), fails the op with InvalidParameter.
    $present = $Params.ContainsKey($Name) -and $null -ne $Params[$Name]
    if ($present -and $Required -and $Params[$Name] -is [string] -and $Params[$Name].Trim() -eq '') { $present = $false }
    if ($present) { return $Params[$Name] }
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
# NetRemoteTOD (netapi32.dll): another server's clock (NT 4.0 answers it), for time windows.
$XconNetSource = @'
using System;
using System.Runtime.InteropServices;
public static class XconNet {
    [StructLayout(LayoutKind.Sequential, CharSet = CharSet.Unicode)]
    public class NetResource {
        public int Scope; public int Type; public int DisplayType; public int Usage;
        public string LocalName; public string RemoteName; public string Comment; public string Provider;
    }
    [DllImport("mpr.dll", CharSet = CharSet.Unicode)]
    public static extern int WNetAddConnection2(NetResource resource, string password, string user, int flags);
    [DllImport("mpr.dll", CharSet = CharSet.Unicode)]
    public static extern int WNetCancelConnection2(string name, int flags, bool force);
    [DllImport("netapi32.dll", CharSet = CharSet.Unicode)]
    static extern int NetRemoteTOD(string server, out IntPtr buffer);
    [DllImport("netapi32.dll")]
    static extern int NetApiBufferFree(IntPtr buffer);
    public static DateTime RemoteTime(string server) {
        IntPtr buffer;
        int code = NetRemoteTOD(server, out buffer);
        if (code != 0) { throw new System.ComponentModel.Win32Exception(code); }
        try {
            // TIME_OF_DAY_INFO: tod_elapsedt (seconds since 1970-01-01 UTC), tod_msecs, ..., tod_hunds
            uint elapsed = (uint)Marshal.ReadInt32(buffer, 0);
            int hunds = Marshal.ReadInt32(buffer, 20);
            return new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddSeconds(elapsed).AddMilliseconds(hunds * 10);
        } finally { NetApiBufferFree(buffer); }
    }
}
'@

function Initialize-XconNet {
    if (-not ('XconNet' -as [type])) { Add-Type -TypeDefinition $XconNetSource }
}

function Get-XconServerTime([string]$Server) {
    # The server's clock in UTC: this host's when it is the server, else NetRemoteTOD's answer.
    if ($Server -eq [Environment]::MachineName -or $Server -eq '.' -or $Server -eq 'localhost') { return [DateTime]::UtcNow }
    Initialize-XconNet
    return [XconNet]::RemoteTime('\\' + $Server)
}

function Connect-XconIpc([string]$Server) {
    # An authenticated IPC$ session to the server (event log, counters and service control then use
    # it). Returns $true: this call made it and must remove it.
    Initialize-XconNet
    $share = '\\' + $Server + '\IPC$'
    $resource = New-Object XconNet+NetResource
    $resource.RemoteName = $share
    $code = [XconNet]::WNetAddConnection2($resource, $XconTarget.Password, $XconTarget.User, 0)
    if ($code -eq 0) { return $true }
    # Every other code fails the op as the Win32 error it is (the controller maps it): 1219, a
    # session to the server as another account, too, or the op would run as that account.
    $text = (New-Object System.ComponentModel.Win32Exception $code).Message
    throw (New-Object System.ComponentModel.Win32Exception -ArgumentList $code, ("IPC$ session to $share as " + $XconTarget.User + " failed: " + $text))
}

function Disconnect-XconIpc([string]$Server) {
    $null = [XconNet]::WNetCancelConnection2('\\' + $Server + '\IPC$', 0, $true)
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

function ConvertTo-XconAttributeValue($Value, [bool]$Octet) {
    # JSON value -> ADSI value. An octet-string value travels typed from the controller (its profile
    # knows the octet-string attributes; nothing here reads the directory schema): hex text, written
    # as byte[]. Anything else for an octet-string attribute fails (InvalidSyntax) before the write.
    if (-not $Octet) { return $Value }
    if ($Value -isnot [string]) {
        throw (New-XconError 'InvalidSyntax' '0x80072015' ("an octet-string value must be hex text, not '" + [string]$Value + "'"))
    }
    return ,(ConvertFrom-XconHex $Value)
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
    $opScripts = @{}
    $libraries = @{}
    for ($i = 1; $i -lt $Parts.Length - 1; $i++) {
        $firstLine = ($Parts[$i] -split "`n", 2)[0].Trim()
        if ($firstLine -match '^# xcon-lib: ([a-z_]+)$') {
            # Dot-sourced at this script's scope: its functions are the runner's and the ops' too.
            $libraries[$matches[1]] = $true
            . ([ScriptBlock]::Create($Parts[$i]))
        } elseif ($firstLine -match '^# xcon-op: ([a-z_]+)$') {
            $opScripts[$matches[1]] = [ScriptBlock]::Create($Parts[$i])
        } else { throw "payload part $i is neither a library nor an op script" }
    }
    if (-not $libraries.ContainsKey('json')) { throw 'the payload has no JSON library part (# xcon-lib: json)' }
    $request = ConvertFrom-XconJson $Parts[$Parts.Length - 1]
    if ($request -isnot [System.Collections.IDictionary] -or $request['version'] -ne 1) {
        throw 'unsupported request: expected {"version": 1, ...}'
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
