"""losslint's rules: one module per rule (installed as `losslint.rules`)."""
