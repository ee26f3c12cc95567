"""Guard samples: schema, loading and validation, writing, import of users' tables, prompt/target formats."""
