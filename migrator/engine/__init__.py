"""Running migrations: the per-device driver (:mod:`migrator.engine.device`) and, on top of it, waves."""
