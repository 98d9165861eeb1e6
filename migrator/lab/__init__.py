"""The lab: a simulated Windows fleet that speaks WS-Man/WinRS/PSRP and behaves like Windows where the
migration depends on it (see ``shell.py`` for the seams between its parts)."""
