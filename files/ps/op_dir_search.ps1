# xcon-op: dir_search
# Reads directory entries over LDAP (ADSI DirectorySearcher) from an Exchange server.
# Params: server  - Exchange server NetBIOS name (LDAP://SERVER)
#         port    - its LDAP port (optional; 389 when absent: LDAP://SERVER:PORT otherwise)
#         base    - LDAP DN to search from; "" = the organisation root (o=ORG from RootDSE)
#         scope   - base | onelevel | subtree
#         classes - objectClass names to match (optional; any class when empty)
#         attributes - attribute names to read. X.400 link attributes are operational: they are
#                   only returned when named here, so the list is always explicit.
#         multi   - the names of the multi-valued attributes among them (answered as lists; any other
#                   as a list only when it has more than one value). Nothing reads the schema here.
#         page_size - entries per page (optional; 0 = unpaged). A directory caps an unpaged search
#                   at its size limit, and DirectorySearcher then simply ends the list (its enumerator
#                   takes ADSI's "size limit exceeded" for the last row): a short list, no error. A
#                   paged search (the paged-results control) returns every entry.
#         resolve - an octet-string attribute holding a host name or address as ASCII (the Stack
#                   address, N-Address); optional. Each entry's value that is not an IP literal is
#                   resolved with THIS Windows host's resolver ([System.Net.Dns]::GetHostAddresses:
#                   DNS, hosts file, NetBIOS), as the MTA resolves a host-name Stack address; the
#                   controller's resolver rarely knows internal names.
# Output: @{entries = @(@{dn; objectClass = @(...); attributes = @{Name = value}; octets = @(names);
#                         resolved = @{name; addresses = @(...); error} (only with resolve, for a name)})}
#         octet strings (the values ADSI returned as byte[], named in octets) as lower-case hex.
#         A resolve value that is not an octet string marks that entry's resolved.error, nothing more.
param($Params)

$server = Get-XconLdapServer $Params      # SERVER or SERVER:PORT
$base = [string](Get-XconParam $Params 'base' '')
$scopeName = [string](Get-XconParam $Params 'scope' 'subtree')
$classes = @(Get-XconParam $Params 'classes' @())
$attributes = @(Get-XconParam $Params 'attributes' @())
$resolve = [string](Get-XconParam $Params 'resolve' '')
$pageSize = [int](Get-XconParam $Params 'page_size' 0)
$multi = @{}
foreach ($n in @(Get-XconParam $Params 'multi' @())) { $multi[([string]$n).ToLowerInvariant()] = $true }

$scopes = @{ base = 'Base'; onelevel = 'OneLevel'; subtree = 'Subtree' }
if (-not $scopes.ContainsKey($scopeName)) {
    throw (New-XconError 'InvalidParameter' '0x80070057' "scope must be base, onelevel or subtree, not '$scopeName'")
}

if ($base -eq '') {
    # The organisation root: the naming context that starts with o= (Exchange 5.5), else the first one.
    $rootDse = Get-XconEntry $server 'RootDSE'
    $contexts = @($rootDse.Properties['namingContexts'])
    $base = [string]$contexts[0]
    foreach ($context in $contexts) { if ([string]$context -match '^o=') { $base = [string]$context; break } }
}

function Get-FilterValue([string]$Text) {
    # RFC 4515 escaping of a filter value.
    return $Text.Replace('\', '\5c').Replace('*', '\2a').Replace('(', '\28').Replace(')', '\29').Replace([string][char]0, '\00')
}
$filter = '(objectClass=*)'
if ($classes.Length -gt 0) {
    $filter = '(|'
    foreach ($class in $classes) { $filter += '(objectClass=' + (Get-FilterValue ([string]$class)) + ')' }
    $filter += ')'
}

$searcher = New-Object System.DirectoryServices.DirectorySearcher (Get-XconEntry $server $base)
$searcher.SearchScope = [System.DirectoryServices.SearchScope]$scopes[$scopeName]
$searcher.Filter = $filter
if ($pageSize -gt 0) { $searcher.PageSize = $pageSize }
[void]$searcher.PropertiesToLoad.Add('objectClass')
foreach ($name in $attributes) { [void]$searcher.PropertiesToLoad.Add([string]$name) }

$prefix = 'LDAP://' + $server + '/'
$entries = New-Object System.Collections.ArrayList
$found = $searcher.FindAll()
try {
    foreach ($hit in $found) {
        # The DN is the ADsPath without LDAP://SERVER/ and without ADSI's '\/' escaping.
        $dn = [string]$hit.Path
        if ($dn.StartsWith($prefix, [StringComparison]::OrdinalIgnoreCase)) { $dn = $dn.Substring($prefix.Length) }
        $dn = $dn.Replace('\/', '/')
        $values = @{}
        $octetNames = New-Object System.Collections.ArrayList
        foreach ($name in $attributes) {
            $found_values = $hit.Properties[[string]$name]
            if ($null -eq $found_values -or $found_values.Count -eq 0) { continue }
            $list = New-Object System.Collections.ArrayList
            foreach ($v in $found_values) {
                if ($v -is [byte[]]) { [void]$list.Add((ConvertTo-XconHex $v)) } else { [void]$list.Add($v) }
            }
            if ($found_values[0] -is [byte[]]) { [void]$octetNames.Add([string]$name) }
            if ($multi.ContainsKey(([string]$name).ToLowerInvariant()) -or $list.Count -gt 1) {
                $values[[string]$name] = $list.ToArray()
            } else { $values[[string]$name] = $list[0] }
        }
        $classList = New-Object System.Collections.ArrayList
        foreach ($c in $hit.Properties['objectClass']) { [void]$classList.Add([string]$c) }
        $entry = @{ dn = $dn; objectClass = $classList.ToArray(); attributes = $values; octets = $octetNames.ToArray() }
        $hostName = ''
        if ($resolve -ne '' -and $values.ContainsKey($resolve)) {
            try {
                $hostName = [Text.Encoding]::ASCII.GetString((ConvertFrom-XconHex ([string]$values[$resolve]))).Trim()
            } catch {
                # One odd value marks that value, never the whole answer (nor the server's audit).
                $entry['resolved'] = @{ name = $null; addresses = @(); error = ("$resolve not read as an octet string: " + $_.Exception.Message) }
            }
        }
        if ($hostName -ne '') {
            $literal = $null
            if ($hostName -ne '' -and -not [System.Net.IPAddress]::TryParse($hostName, [ref]$literal)) {
                $addresses = New-Object System.Collections.ArrayList
                $reason = $null
                try {
                    foreach ($a in [System.Net.Dns]::GetHostAddresses($hostName)) { [void]$addresses.Add($a.ToString()) }
                } catch {
                    $e = $_.Exception
                    while ($null -ne $e.InnerException) { $e = $e.InnerException }
                    $reason = $e.Message           # e.g. "No such host is known"
                }
                $entry['resolved'] = @{ name = $hostName; addresses = $addresses.ToArray(); error = $reason }
            }
        }
        [void]$entries.Add($entry)
    }
} finally {
    $found.Dispose()
}
return @{ entries = $entries.ToArray() }
