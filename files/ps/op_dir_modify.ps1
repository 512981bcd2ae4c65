# xcon-op: dir_modify
# Changes attributes of one directory object (ADSI PutEx per change, then ONE SetInfo, so either
# every change is written or none is).
# Params: server  - Exchange server NetBIOS name (LDAP://SERVER)
#         port    - its LDAP port (optional; 389 when absent: LDAP://SERVER:PORT otherwise)
#         dn      - LDAP DN of the object
#         changes - @(@{attribute; action = replace|clear|append|remove; values = @(...); octets})
#                   octets = $true: the attribute is an octet string, its values arrive as hex text and
#                   are written as bytes (a value that is not hex is refused before anything is written).
# Output: @{dn; modified = @(attribute names)}
param($Params)

$server = Get-XconLdapServer $Params      # SERVER or SERVER:PORT
$dn = [string](Get-XconParam $Params 'dn' -Required)
$changes = @(Get-XconParam $Params 'changes' -Required)

# ADS_PROPERTY_OPERATION_ENUM: clear 1, update (replace) 2, append 3, delete (remove) 4.
$actions = @{ clear = 1; replace = 2; append = 3; remove = 4 }
$entry = Get-XconEntry $server $dn
$modified = New-Object System.Collections.ArrayList
foreach ($change in $changes) {
    $name = [string](Get-XconParam $change 'attribute' -Required)
    $action = [string](Get-XconParam $change 'action' 'replace')
    if (-not $actions.ContainsKey($action)) {
        throw (New-XconError 'InvalidParameter' '0x80070057' "action must be replace, clear, append or remove, not '$action'")
    }
    if ($action -eq 'clear') {
        $entry.PutEx(1, $name, $null)
    } else {
        $values = New-Object System.Collections.ArrayList
        $octets = [bool](Get-XconParam $change 'octets' $false)
        foreach ($v in @(Get-XconParam $change 'values' @())) { [void]$values.Add((ConvertTo-XconAttributeValue $v $octets)) }
        if ($values.Count -eq 0) {
            throw (New-XconError 'InvalidParameter' '0x80070057' "change of '$name' ($action) needs values")
        }
        $entry.PutEx($actions[$action], $name, $values.ToArray())
    }
    [void]$modified.Add($name)
}
$entry.SetInfo()
return @{ dn = $dn; modified = $modified.ToArray() }
