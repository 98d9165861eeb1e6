"""Tests of migrator.store."""
