# xcon-lib: json
# The fix-xcon JSON reader/writer (Windows PowerShell 2.0 on .NET 2.0), sent right after runner.ps1.
# The runner dot-sources this part in its own scope before it reads the request, so these functions
# are visible to the runner and to every op script. No .NET 3.5 (JavaScriptSerializer): a PowerShell
# 2.0 host need not have it. Everything written is ASCII (non-ASCII characters as \uXXXX escapes).
# Uses ConvertTo-XconHex and ConvertTo-XconIso from the runner.

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
        $map = New-XconJsonObject
        foreach ($k in $Value.PSBase.Keys) { $map[[string]$k] = ConvertTo-XconJsonValue $Value[$k] }
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
$XconJsonOther = New-Object System.Text.RegularExpressions.Regex '[^\x20-\x7E]'

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

function New-XconJsonObject {
    # A JSON object: a Hashtable whose keys compare ordinally (case-sensitive: {"cn": .., "CN": ..}
    # keeps both; PowerShell's @{} ignores case).
    return ,(New-Object System.Collections.Hashtable -ArgumentList ([StringComparer]::Ordinal))
}

function Read-XconJsonScalar($S) {
    # A string, true / false / null or a number at $S.Pos: numbers int / long / double; a number
    # beyond double's range is +/-Infinity (.NET 2.0's Double.Parse would throw OverflowException).
    $c = [string]$S.Text[$S.Pos]
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
    # The text is a valid number (the pattern above): TryParse fails only when it overflows.
    $double = [double]0
    if ([double]::TryParse($m.Value, [Globalization.NumberStyles]::Float, $culture, [ref]$double)) { return $double }
    if ($m.Value.StartsWith('-')) { return [double]::NegativeInfinity }
    return [double]::PositiveInfinity
}

function Read-XconJsonValue($S) {
    # One value at $S.Pos, without recursion (PowerShell 2.0 stops a script at call depth 100): an
    # explicit stack of the open objects and arrays. Objects become ordinal hashtables, arrays
    # object[] (returned whole), numbers int / long / double, true / false / null as themselves.
    $stack = New-Object System.Collections.ArrayList     # frames @{ Value; List; Key }
    while ($true) {
        Skip-XconJsonSpace $S
        if ($S.Pos -ge $S.Text.Length) { throw 'unexpected end of JSON' }
        $c = [string]$S.Text[$S.Pos]
        if ($c -ceq '{') {
            $S.Pos += 1
            Skip-XconJsonSpace $S
            if ($S.Pos -lt $S.Text.Length -and [string]$S.Text[$S.Pos] -ceq '}') { $S.Pos += 1; $value = New-XconJsonObject }
            else {
                [void]$stack.Add(@{ Value = (New-XconJsonObject); List = $null; Key = (Read-XconJsonKey $S) })
                continue
            }
        } elseif ($c -ceq '[') {
            $S.Pos += 1
            Skip-XconJsonSpace $S
            if ($S.Pos -lt $S.Text.Length -and [string]$S.Text[$S.Pos] -ceq ']') { $S.Pos += 1; $value = @() }
            else {
                [void]$stack.Add(@{ Value = $null; List = (New-Object System.Collections.ArrayList); Key = $null })
                continue
            }
        } else {
            $value = Read-XconJsonScalar $S
        }
        # $value is complete: put it into the innermost open container, closing those that end here.
        while ($true) {
            if ($stack.Count -eq 0) { return ,$value }
            $top = $stack[$stack.Count - 1]
            if ($null -ne $top.List) { [void]$top.List.Add($value) } else { $top.Value[$top.Key] = $value }
            Skip-XconJsonSpace $S
            if ($S.Pos -ge $S.Text.Length) { throw 'unterminated object or array in JSON' }
            $c = [string]$S.Text[$S.Pos]
            $S.Pos += 1
            if ($c -ceq ',') {
                if ($null -eq $top.List) { $top.Key = Read-XconJsonKey $S }
                break
            }
            if ($null -ne $top.List -and $c -ceq ']') { $value = $top.List.ToArray() }
            elseif ($null -eq $top.List -and $c -ceq '}') { $value = $top.Value }
            else { throw "expected ',' or the end of an object or array in JSON at offset $($S.Pos - 1)" }
            $stack.RemoveAt($stack.Count - 1)
        }
    }
}

function Read-XconJsonKey($S) {
    # A member name and its ':' (the value follows).
    Skip-XconJsonSpace $S
    if ($S.Pos -ge $S.Text.Length -or [string]$S.Text[$S.Pos] -cne '"') { throw "expected a member name in JSON at offset $($S.Pos)" }
    $key = Read-XconJsonString $S
    Skip-XconJsonSpace $S
    if ($S.Pos -ge $S.Text.Length -or [string]$S.Text[$S.Pos] -cne ':') { throw "expected ':' in JSON at offset $($S.Pos)" }
    $S.Pos += 1
    return $key
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
    # A JSON string in pure ASCII: '"', '\', control and non-ASCII characters escaped. The common
    # escapes (event messages are full of CR/LF) are whole-string Replace calls; only what is still
    # outside printable ASCII after them goes character by character.
    [void]$Out.Append('"')
    if ($XconJsonPlain.IsMatch($Text)) {
        $Text = $Text.Replace('\', '\\').Replace('"', '\"').Replace("`r", '\r').Replace("`n", '\n').Replace("`t", '\t')
    }
    if (-not $XconJsonOther.IsMatch($Text)) {
        [void]$Out.Append($Text)
    } else {
        foreach ($ch in $Text.ToCharArray()) {
            $n = [int]$ch
            if ($n -lt 32 -or $n -gt 126) { [void]$Out.Append('\u').Append($n.ToString('x4')) }
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
        foreach ($key in $Value.PSBase.Keys) {
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
