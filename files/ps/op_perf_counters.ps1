# xcon-op: perf_counters
# Reads performance counters of a (possibly remote) server with System.Diagnostics.PerformanceCounter
# (works on PowerShell 2.0 and against Windows NT/2000 servers, unlike Get-Counter).
# Params: server - default machine for paths without \\MACHINE
#         paths  - counter paths: \\MACHINE\Object(Instance)\Counter, \\MACHINE\Object\Counter;
#                  Instance * = every instance, e.g. \\EXOUT\MSExchangeMTA Connections(*)\Queue Length
# Output: @{samples = @(@{path; instance (null when the object has none); value})}
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$paths = @(Get-XconParam $Params 'paths' -Required)

$samples = New-Object System.Collections.ArrayList
foreach ($path in $paths) {
    if ([string]$path -notmatch '^(?:\\\\([^\\]+))?\\([^\\(]+)(?:\((.*)\))?\\([^\\]+)$') {
        throw (New-XconError 'InvalidParameter' '0x80070057' "not a counter path: '$path'")
    }
    $machine = $server
    if ($matches[1]) { $machine = $matches[1] }
    $object = $matches[2]
    $instance = $matches[3]
    $counter = $matches[4]
    $instances = @($null)
    if ($instance -eq '*') {
        $category = New-Object System.Diagnostics.PerformanceCounterCategory -ArgumentList $object, $machine
        $instances = @($category.GetInstanceNames() | Sort-Object)
    } elseif ($instance) {
        $instances = @($instance)
    }
    foreach ($name in $instances) {
        if ($null -eq $name) {
            $pc = New-Object System.Diagnostics.PerformanceCounter -ArgumentList $object, $counter, '', $machine
            $full = "\\$machine\$object\$counter"
        } else {
            $pc = New-Object System.Diagnostics.PerformanceCounter -ArgumentList $object, $counter, $name, $machine
            $full = "\\$machine\$object($name)\$counter"
        }
        try { $value = $pc.NextValue() } finally { $pc.Dispose() }
        if ($value -eq [Math]::Floor($value)) { $value = [long]$value }
        [void]$samples.Add(@{ path = $full; instance = $name; value = $value })
    }
}
return @{ samples = $samples.ToArray() }
