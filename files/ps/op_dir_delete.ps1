# xcon-op: dir_delete
# Deletes one leaf directory object (e.g. a connector the toolkit created).
# Params: server - Exchange server NetBIOS name (LDAP://SERVER)
#         port    - its LDAP port (optional; 389 when absent: LDAP://SERVER:PORT otherwise)
#         dn     - LDAP DN of the object
# Output: @{dn}
param($Params)

$server = Get-XconLdapServer $Params      # SERVER or SERVER:PORT
$dn = [string](Get-XconParam $Params 'dn' -Required)

$entry = Get-XconEntry $server $dn    # fails with NoSuchObject when it is not there
$parent = $entry.psbase.Parent
$parent.psbase.Children.Remove($entry)
return @{ dn = $dn }
