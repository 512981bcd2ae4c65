# xcon-op: dir_create
# Creates one directory object (e.g. an X.400 connector) with all its attributes in ONE SetInfo:
# every attribute is Put before the single write, so a refusal leaves nothing half-made.
# Params: server     - Exchange server NetBIOS name (LDAP://SERVER)
#         port    - its LDAP port (optional; 389 when absent: LDAP://SERVER:PORT otherwise)
#         parent     - LDAP DN of the container (e.g. cn=Connections,cn=Configuration,ou=SITE,o=ORG)
#         cn         - the new object's directory name (the RDN value after cn=, unescaped); on the
#                      5.5 directory it becomes the `rdn` (Common-Name) attribute, while LDAP `cn` is
#                      Display-Name, an ordinary attribute given in `attributes`
#         class      - object class (e.g. RFC1006-X400-Link)
#         attributes - @{Name = value or @(values)}; octet strings as hex text
#         octets     - the names of the attributes that are octet strings: their values are written
#                      as bytes (a value that is not hex is refused before anything is written)
# Output: @{dn}
param($Params)

$server = Get-XconLdapServer $Params      # SERVER or SERVER:PORT
$parentDn = [string](Get-XconParam $Params 'parent' -Required)
$cn = [string](Get-XconParam $Params 'cn' -Required)
$class = [string](Get-XconParam $Params 'class' -Required)
$attributes = Get-XconParam $Params 'attributes' @{}
$octets = @{}
foreach ($n in @(Get-XconParam $Params 'octets' @())) { $octets[([string]$n).ToLowerInvariant()] = $true }

$rdn = 'cn=' + (Get-XconRdnValue $cn)
$parent = Get-XconEntry $server $parentDn
$child = $parent.Create($class, $rdn.Replace('/', '\/'))
foreach ($name in @($attributes.PSBase.Keys)) {
    if ([string]$name -eq 'rdn') { continue }   # the RDN already sets the directory name
    $value = $attributes[$name]
    $octet = $octets.ContainsKey(([string]$name).ToLowerInvariant())
    if ($value -is [System.Array]) {
        $values = New-Object System.Collections.ArrayList
        foreach ($v in $value) { [void]$values.Add((ConvertTo-XconAttributeValue $v $octet)) }
        $child.PutEx(2, [string]$name, $values.ToArray())
    } else {
        $child.Put([string]$name, (ConvertTo-XconAttributeValue $value $octet))
    }
}
$child.SetInfo()
return @{ dn = $rdn + ',' + $parentDn }
