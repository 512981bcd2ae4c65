# xcon-op: event_query
# Reads an event log of a (possibly remote) server, newest first until `since` or `max`, and
# returns the entries oldest first. The walk stops at `since`: a busy log is never read whole. Uses System.Diagnostics.EventLog (what Get-EventLog uses), so
# "no matching events" is an empty list and not an error.
# Params: server - the computer whose log is read (remote event log)
#         log    - log name, e.g. Application
#         source - event source, e.g. MSExchangeMTA (optional: any source)
#         ids    - event ids to keep (optional: all)
#         since  - where the walk stops (required): an ISO-8601 UTC time, or an xs:duration before
#                  the SERVER's now ("-PT120M" = the last two hours on the server's clock)
#         max    - at most this many entries (default 1000)
# Output: @{now = ISO UTC time of the SERVER's clock (NetRemoteTOD when it is another machine);
#           since = the ISO UTC time the walk stopped at;
#           events = @(@{record; id; time; type; category; source; message; strings})}
#         strings = the entry's insertion strings (EventLogEntry.ReplacementStrings), in order: they
#         survive when the message DLL cannot be loaded (then message is .NET's "The description for
#         Event ID ... cannot be found" text), so the controller parses them first.
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$logName = [string](Get-XconParam $Params 'log' 'Application')
$source = [string](Get-XconParam $Params 'source' '')
$ids = @(Get-XconParam $Params 'ids' @())
$sinceText = [string](Get-XconParam $Params 'since' -Required)
$max = [int](Get-XconParam $Params 'max' 1000)

$serverNow = Get-XconServerTime $server
try {
    if ($sinceText.StartsWith('-P')) { $since = $serverNow.Add([System.Xml.XmlConvert]::ToTimeSpan($sinceText)) }
    else {
        $since = [DateTime]::Parse($sinceText, [Globalization.CultureInfo]::InvariantCulture,
                                   [Globalization.DateTimeStyles]::AdjustToUniversal)
    }
} catch {
    throw (New-XconError 'InvalidParameter' '0x80070057' "since is not an ISO-8601 time or duration: '$sinceText'")
}
$wanted = @{}
foreach ($id in $ids) { $wanted[[int]$id] = $true }

$log = New-Object System.Diagnostics.EventLog -ArgumentList $logName, $server
$found = New-Object System.Collections.ArrayList
try {
    $entries = $log.Entries
    for ($i = $entries.Count - 1; $i -ge 0 -and $found.Count -lt $max; $i--) {
        $entry = $entries[$i]
        if ($entry.TimeGenerated.ToUniversalTime() -lt $since) { break }
        if ($source -ne '' -and $entry.Source -ne $source) { continue }
        $id = [int]($entry.InstanceId -band 0xFFFF)
        if ($wanted.Count -gt 0 -and -not $wanted.ContainsKey($id)) { continue }
        [void]$found.Add(@{
            record = $entry.Index; id = $id; time = (ConvertTo-XconIso $entry.TimeGenerated)
            type = $entry.EntryType.ToString(); category = $entry.Category
            source = $entry.Source; message = $entry.Message
            strings = @($entry.ReplacementStrings)
        })
    }
} finally {
    $log.Dispose()
}
$found.Reverse()
return @{ now = (ConvertTo-XconIso $serverNow); since = (ConvertTo-XconIso $since); events = $found.ToArray() }
