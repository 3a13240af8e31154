"""Fixtures of the UI tests: none; the shared pieces are in ui_testlib, trading_stack and
snapshot_app."""
