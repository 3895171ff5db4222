"""The facts and plumbing everything else stands on: domain, errors, schemas, configs, storage,
atomic writes."""
