"""The bulk path: HighLevel UI CSV import packages and their reconciliation (issue 7)."""
