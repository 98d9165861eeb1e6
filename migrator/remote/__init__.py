"""The one seam to devices: transports (PSRP, WinRM), credentials, error translation and retry."""
