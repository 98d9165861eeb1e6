"""The lab's directory: a domain controller per lab domain that speaks LDAP v3 on the wire.

- :mod:`.dit`: one domain's tree (entries, attributes, the member/memberOf link, AD's result codes);
- :mod:`.build`: the trees generated from the fleet and its seed (users, groups, computers, the Entra Kerberos
  server object, Group Policy containers linked to OUs and filtered by group);
- :mod:`.security`: the binary security descriptor that carries a GPO's security filtering;
- :mod:`.filters`: AD's search filters, including LDAP_MATCHING_RULE_IN_CHAIN and the bit-wise rules;
- :mod:`.protocol`: one LDAP connection, sans I/O, encoded and decoded with ldap3's pyasn1 RFC 4511 classes;
- :mod:`.server`: the listeners (389 and 636 with the lab CA) on each DC's own 127.x address.

The product never imports this package; it talks to it over LDAP, as it would to Active Directory.
"""
