"""MongoDB access: client, indexes and the embedded engine."""
