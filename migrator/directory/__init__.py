"""Active Directory through ldap3: what a wave needs to know from each domain before it visits any device.

- :mod:`.settings`: where and how to read each domain (the inventory's ``directory:`` section, the lab's
  ``lab: domains:``, defaults), TLS as for WinRM, which credentials;
- :mod:`.client`: one bound connection (LDAPS verified, or LDAP with NTLM sealing; NTLM, simple, or SASL GSSAPI),
  paged searches, requests counted, ldap3's errors translated once into :class:`~migrator.errors.DirectoryError`;
- :mod:`.reader`: the Entra Kerberos server object, its key version and who its msDS-NeverRevealGroup keeps out
  (LDAP_MATCHING_RULE_IN_CHAIN); the computer objects for ``migrator inventory from-ad``;
- :mod:`.knowledge`: all of that read once per domain per wave, as plain data for the path decision and machine.
"""
