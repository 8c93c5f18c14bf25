"""Cloud providers through libcloud: EC2 against moto, the others against HTTP-level fakes."""
