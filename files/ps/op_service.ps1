# xcon-op: service
# Queries or restarts a Windows service on a (possibly remote) server (ServiceController).
# A restart stops the service (and the services that depend on it), waits until Stopped, starts it,
# waits until Running, then starts again the dependent services that were running before.
# Params: server      - the computer running the service
#         name        - service name, e.g. MSExchangeMTA
#         action      - query | restart
#         timeout_sec - how long each wait may take (default 300)
# Output: @{name; state = Running|Stopped|...; restarted = $true|$false}
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$name = [string](Get-XconParam $Params 'name' -Required)
$action = [string](Get-XconParam $Params 'action' 'query')
$timeout = [TimeSpan]::FromSeconds([int](Get-XconParam $Params 'timeout_sec' 300))
if ($action -ne 'query' -and $action -ne 'restart') {
    throw (New-XconError 'InvalidParameter' '0x80070057' "action must be query or restart, not '$action'")
}

[void][System.Reflection.Assembly]::LoadWithPartialName('System.ServiceProcess')
$sc = New-Object System.ServiceProcess.ServiceController -ArgumentList $name, $server
$restarted = $false
try {
    $state = $sc.Status.ToString()        # fails here when the service or the server is unreachable
    if ($action -eq 'restart') {
        $dependents = New-Object System.Collections.ArrayList
        foreach ($d in $sc.DependentServices) { if ($d.Status -eq 'Running') { [void]$dependents.Add($d.ServiceName) } }
        if ($sc.Status -ne 'Stopped') {
            $sc.Stop()
            $sc.WaitForStatus('Stopped', $timeout)
        }
        $sc.Start()
        $sc.WaitForStatus('Running', $timeout)
        foreach ($d in $dependents) {
            $dsc = New-Object System.ServiceProcess.ServiceController -ArgumentList $d, $server
            if ($dsc.Status -eq 'Stopped') { $dsc.Start(); $dsc.WaitForStatus('Running', $timeout) }
        }
        $sc.Refresh()
        $state = $sc.Status.ToString()
        $restarted = $true
    }
} catch {
    # Report service-control failures as ServiceError with the Win32 error as HRESULT.
    $e = $_.Exception
    while ($null -ne $e.InnerException) { $e = $e.InnerException }
    $hresult = '0x80070427'
    if ($e -is [System.ComponentModel.Win32Exception]) { $hresult = '0x8007{0:X4}' -f ($e.NativeErrorCode -band 0xFFFF) }
    if ($e -is [System.ServiceProcess.TimeoutException]) { $hresult = '0x8007041D' }
    $category = 'ServiceError'
    if ($hresult -eq '0x80070005') { $category = 'AccessDenied' }
    throw (New-XconError $category $hresult ("service $name on ${server}: " + $e.Message))
} finally {
    $sc.Dispose()
}
return @{ name = $name; state = $state; restarted = $restarted }
