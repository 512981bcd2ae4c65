# xcon-op: reg_read
# Reads named values of one registry key under HKEY_LOCAL_MACHINE of SERVER (through the Remote
# Registry service when SERVER is another machine), e.g. the MTA's TCP port: value "RFC1006 Port
# Number" of SYSTEM\CurrentControlSet\Services\MSExchangeMTA\Parameters, 102 when absent (Q161931,
# Q176466).
# Params: server - computer name; key - path under HKLM; names - value names to read
# Output: @{key; found = key exists; values = @{NAME = value, $null when the value is absent}}
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$keyPath = [string](Get-XconParam $Params 'key' -Required)
$names = @(Get-XconParam $Params 'names' @())

$values = @{}
$found = $false
$hive = [Microsoft.Win32.RegistryKey]::OpenRemoteBaseKey([Microsoft.Win32.RegistryHive]::LocalMachine, $server)
try {
    $key = $hive.OpenSubKey($keyPath)
    $found = $null -ne $key
    foreach ($name in $names) {
        if ($found) { $values[[string]$name] = $key.GetValue([string]$name) } else { $values[[string]$name] = $null }
    }
    if ($found) { $key.Close() }
} finally {
    $hive.Close()
}
return @{ key = $keyPath; found = $found; values = $values }
