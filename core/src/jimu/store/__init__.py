"""Storage: the database engine, runtime tables, schema diff/plan/apply, records, outbox."""
