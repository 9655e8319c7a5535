//! ingest (stub)
