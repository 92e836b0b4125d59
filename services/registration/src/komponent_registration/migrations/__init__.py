"""Numbered plain-SQL migrations of the registration database, applied by komponent_runtime.database.migrate."""
