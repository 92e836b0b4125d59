"""Billing domain: pure rules for Danish invoices, credit notes, numbering, lifecycle and reminders."""
