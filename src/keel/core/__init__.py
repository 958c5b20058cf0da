"""Pure domain types, identifiers and validation; no I/O."""
