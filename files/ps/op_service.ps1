# xcon-op: service
# Queries or restarts a Windows service on a (possibly remote) server (ServiceController).
# A restart is compensating: it never ends with fewer services running than before. It records the
# running services that depend on this one (DependentServices: every dependent, direct or not, in the
# order to stop them), stops each of them and then the service, every wait bounded by what is left of
# timeout_sec (ServiceController.Stop() alone would stop the dependents itself, waiting a fixed 30 s
# for each, and throw), and in a finally starts the service and every recorded dependent again.
# Params: server      - the computer running the service
#         name        - service name, e.g. MSExchangeMTA
#         action      - query | restart
#         timeout_sec - how long the stops may take together, and each start (default 300)
# Output: @{name; state = Running|Stopped|...; restarted = the service was stopped and is running again;
#           dependents = @(running dependents recorded); stopped = @(...); started = @(...);
#           timed_out = @(services a wait gave up on); not_running = @(service and recorded dependents
#           not Running at the end); error = text of a failure other than a time-out, or $null}
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$name = [string](Get-XconParam $Params 'name' -Required)
$action = [string](Get-XconParam $Params 'action' 'query')
$timeoutSec = [int](Get-XconParam $Params 'timeout_sec' 300)
$timeout = [TimeSpan]::FromSeconds($timeoutSec)
if ($action -ne 'query' -and $action -ne 'restart') {
    throw (New-XconError 'InvalidParameter' '0x80070057' "action must be query or restart, not '$action'")
}

[void][System.Reflection.Assembly]::LoadWithPartialName('System.ServiceProcess')
$sc = New-Object System.ServiceProcess.ServiceController -ArgumentList $name, $server
$running = New-Object System.Collections.ArrayList
try {
    $state = $sc.Status.ToString()        # fails here when the service or the server is unreachable
    if ($action -eq 'restart') {
        foreach ($d in $sc.DependentServices) { if ($d.Status -eq 'Running') { [void]$running.Add($d.ServiceName) } }
    }
} catch {
    # Report service-control failures as ServiceError with the Win32 error as HRESULT.
    $e = $_.Exception
    while ($null -ne $e.InnerException) { $e = $e.InnerException }
    $hresult = '0x80070427'
    if ($e -is [System.ComponentModel.Win32Exception]) { $hresult = '0x8007{0:X4}' -f ($e.NativeErrorCode -band 0xFFFF) }
    $category = 'ServiceError'
    if ($hresult -eq '0x80070005') { $category = 'AccessDenied' }
    throw (New-XconError $category $hresult ("service $name on ${server}: " + $e.Message))
} finally {
    $sc.Dispose()
}
if ($action -eq 'query') { return @{ name = $name; state = $state; restarted = $false } }

function Get-XconServiceFailure($ErrorRecord) {
    # The innermost exception: System.ServiceProcess.TimeoutException or the Win32 error's text.
    $e = $ErrorRecord.Exception
    while ($null -ne $e.InnerException) { $e = $e.InnerException }
    return $e
}

$stopped = New-Object System.Collections.ArrayList
$started = New-Object System.Collections.ArrayList
$timedOut = New-Object System.Collections.ArrayList
$errors = New-Object System.Collections.ArrayList
$startOrder = New-Object System.Collections.ArrayList
[void]$startOrder.Add($name)
for ($i = $running.Count - 1; $i -ge 0; $i--) { [void]$startOrder.Add($running[$i]) }
$deadline = [DateTime]::UtcNow.Add($timeout)
$current = $null
try {
    foreach ($current in @($running.ToArray()) + @($name)) {
        $svc = New-Object System.ServiceProcess.ServiceController -ArgumentList $current, $server
        if ($svc.Status -ne 'Stopped' -and $svc.Status -ne 'StopPending') { $svc.Stop() }
        $left = $deadline - [DateTime]::UtcNow
        if ($left -lt [TimeSpan]::Zero) { $left = [TimeSpan]::Zero }
        $svc.WaitForStatus('Stopped', $left)
        [void]$stopped.Add($current)
    }
} catch {
    $e = Get-XconServiceFailure $_
    if ($e -is [System.ServiceProcess.TimeoutException]) { [void]$timedOut.Add($current) }
    else { [void]$errors.Add("stopping ${current}: " + $e.Message) }
} finally {
    foreach ($current in $startOrder) {
        try {
            $svc = New-Object System.ServiceProcess.ServiceController -ArgumentList $current, $server
            if ($svc.Status -eq 'StopPending') { $svc.WaitForStatus('Stopped', $timeout) }
            $svc.Refresh()
            if ($svc.Status -eq 'Stopped') { $svc.Start(); [void]$started.Add($current) }
            $svc.WaitForStatus('Running', $timeout)
        } catch {
            $e = Get-XconServiceFailure $_
            if ($e -is [System.ServiceProcess.TimeoutException]) { [void]$timedOut.Add($current) }
            else { [void]$errors.Add("starting ${current}: " + $e.Message) }
        }
    }
}

$notRunning = New-Object System.Collections.ArrayList
foreach ($current in $startOrder) {
    $svc = New-Object System.ServiceProcess.ServiceController -ArgumentList $current, $server
    if ($svc.Status -ne 'Running') { [void]$notRunning.Add($current) }
    if ($current -eq $name) { $state = $svc.Status.ToString() }
}
$errorText = $null
if ($errors.Count -gt 0) { $errorText = [string]::Join('; ', [string[]]$errors.ToArray()) }
return @{ name = $name; state = $state; restarted = ($started.Contains($name) -and -not $notRunning.Contains($name));
          dependents = $running.ToArray(); stopped = $stopped.ToArray(); started = $started.ToArray();
          timed_out = $timedOut.ToArray(); not_running = $notRunning.ToArray(); error = $errorText }
