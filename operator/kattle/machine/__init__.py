"""Pure orchestration logic: catalogs of definitions, plans, admission, backoff. No I/O."""
