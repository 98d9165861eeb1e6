"""The lab: a simulated Windows fleet that speaks WS-Man/WinRS/PSRP and behaves like Windows where the
migration depends on it (see ``shell.py`` for the seams between its parts).

What it does not model it refuses in one recognisable way, "… is not modelled by the lab (lab/<module>)"
(:mod:`migrator.lab.boundary`); "not recognized" is kept for names Windows lacks too, decided by the list of real
Windows names in :mod:`migrator.lab.windows_names`."""
