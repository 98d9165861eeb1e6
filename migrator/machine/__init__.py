"""The per-device migration state machine (sans-IO): the table as data (:mod:`.table`), guards (:mod:`.guards`),
typed contexts (:mod:`.context`), the deciders of each state (:mod:`.decide`), the handlers of each step's purpose
(:mod:`.purposes`), commands and events (:mod:`.commands`) and the ``transitions``-based runner (:mod:`.core`).
See :mod:`migrator.machine.table` for the theory of operation.

Nothing is re-exported here: importing :mod:`migrator.machine.table` (as reports and the CLI do) must not load
the runner, the steps and the transports behind them.
"""
