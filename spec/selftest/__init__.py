"""Self-tests of the spec: its helpers, its harness, and proof that it rejects wrong solutions."""
