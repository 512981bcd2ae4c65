# xcon-op: dir_root
# Reads the RootDSE of the LDAP directory at SERVER[:PORT], so the caller can tell the Exchange 5.5
# directory of its organisation (a naming context o=ORG) from another directory answering there,
# e.g. Active Directory on 389 of a Windows 2000 domain controller whose Exchange 5.5 directory
# moved to another port (Q224447, Q250989).
# Params: server - Exchange server NetBIOS name; port - LDAP port (optional, 389 when absent)
# Output: @{namingContexts = @(...); defaultNamingContext; supportedCapabilities = @(...);
#           supportedLDAPVersion = @(...); dnsHostName}   (a value the directory does not serve: $null)
param($Params)

$server = Get-XconLdapServer $Params      # SERVER or SERVER:PORT
$rootDse = Get-XconEntry $server 'RootDSE'
$out = @{}
foreach ($name in 'namingContexts', 'supportedCapabilities', 'supportedLDAPVersion') {
    $list = New-Object System.Collections.ArrayList
    foreach ($v in $rootDse.Properties[$name]) { [void]$list.Add([string]$v) }
    $out[$name] = $list.ToArray()
}
foreach ($name in 'defaultNamingContext', 'dnsHostName') {
    $values = $rootDse.Properties[$name]
    if ($null -ne $values -and $values.Count -gt 0) { $out[$name] = [string]$values[0] } else { $out[$name] = $null }
}
return $out
