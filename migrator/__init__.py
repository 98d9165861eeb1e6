"""migrator: move Windows Hello for Business fleets to cloud Kerberos trust, safely and at scale."""

__version__ = "0.1.0"
