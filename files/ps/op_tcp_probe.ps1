# xcon-op: tcp_probe
# Tries a TCP connection from this (WinRM) host, e.g. to port 102 of an MTA or firewall address.
# Params: host - name or address; port - TCP port; timeout_ms - give up after (default 3000)
# Output: @{host; port; connected = $true|$false; error = reason or $null}
param($Params)

$target = [string](Get-XconParam $Params 'host' -Required)
$port = [int](Get-XconParam $Params 'port' -Required)
$timeoutMs = [int](Get-XconParam $Params 'timeout_ms' 3000)

$client = New-Object System.Net.Sockets.TcpClient
$connected = $false
$reason = $null
try {
    $pending = $client.BeginConnect($target, $port, $null, $null)
    if ($pending.AsyncWaitHandle.WaitOne($timeoutMs, $false)) {
        try { $client.EndConnect($pending); $connected = $true }
        catch {
            $e = $_.Exception
            while ($null -ne $e.InnerException) { $e = $e.InnerException }
            $reason = $e.Message
        }
    } else {
        $reason = "timed out after $timeoutMs ms"
    }
} catch {
    $e = $_.Exception
    while ($null -ne $e.InnerException) { $e = $e.InnerException }
    $reason = $e.Message              # e.g. the name does not resolve
} finally {
    $client.Close()
}
return @{ host = $target; port = $port; connected = $connected; error = $reason }
