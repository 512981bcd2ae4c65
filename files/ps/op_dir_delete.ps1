# xcon-op: dir_delete
# Deletes one leaf directory object (e.g. a connector the toolkit created).
# Params: server - Exchange server NetBIOS name (LDAP://SERVER)
#         dn     - LDAP DN of the object
# Output: @{dn}
param($Params)

$server = [string](Get-XconParam $Params 'server' -Required)
$dn = [string](Get-XconParam $Params 'dn' -Required)

$entry = Get-XconEntry $server $dn    # fails with NoSuchObject when it is not there
$parent = $entry.psbase.Parent
$parent.psbase.Children.Remove($entry)
return @{ dn = $dn }
