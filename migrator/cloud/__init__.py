"""Entra ID and Intune through Microsoft Graph: the tenant's settings (:mod:`~migrator.cloud.settings`), the
client (:mod:`~migrator.cloud.client`: msal + httpx) and the stale Hello key cleanup
(:mod:`~migrator.cloud.cleanup`). The product never imports the lab; the lab's tenant speaks the same Graph."""
